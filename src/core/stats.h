// stats.h — the allocator's counters: bumped on slow paths only (never per malloc); report.h reads them.
#pragma once
#include <cstddef>

#include "core/size_class.h"

namespace km {

void stats_metadata_add(long bytes);
// A lane page was set up (+) or retired (-): its cell capacity in bytes.
void stats_page_add(unsigned lane, long bytes);
// A span or huge block was handed out (+) or freed (-): its usable bytes; block: it is a block coming
// or going (counted), not a resize.
void stats_span_add(long bytes, bool block = true);
void stats_huge_add(long bytes, bool block = true);
// Record the peak of (bytes in lane pages + live spans and huge blocks): the adds above call it when
// those grow, so no other slow path reads the shared counters.
void stats_peak_update();

// The counters as they are now (report.cpp adds what it counts by walking the heaps).
struct StatCounters {
  long metadata, page_bytes, peak, span_bytes, spans, huge_bytes, huges;
  long lane_pages[kLaneCount], lane_pages_peak[kLaneCount];
};
void stats_counters(StatCounters* out);

}  // namespace km
