// stats.h — the allocator's counters: one list, bumped on slow paths only (never per malloc).
#pragma once
#include <cstddef>

#include "kmalloc.h"

namespace km {

void stats_metadata_add(long bytes);
// A lane page was set up (+) or retired (-): its cell capacity in bytes.
void stats_page_add(unsigned lane, long bytes);
// A span or huge block was handed out (+) or freed (-): its usable bytes; block: it is a block coming
// or going (counted), not a resize.
void stats_span_add(long bytes, bool block = true);
void stats_huge_add(long bytes, bool block = true);
void stats_huge_cached_add(long bytes);     // freed huge mappings kept for reuse
// Record the peak of (bytes in lane pages + live spans and huge blocks). Cheap; called on slow paths.
void stats_peak_update();
void stats_get(km_stats* out);              // walks the segments for the exact bytes in use
void stats_print();                         // KMALLOC_STATS=1 at exit; km_stats_print()

}  // namespace km
