// stats.h — the allocator's counters: one list, bumped on slow paths only (never per malloc).
#pragma once
#include <cstddef>

#include "kmalloc.h"

namespace km {

void stats_metadata_add(long bytes);
// A lane page was set up (+) or retired (-): its cell capacity in bytes.
void stats_page_add(unsigned lane, long bytes);
void stats_large_add(long bytes);           // live large blocks
void stats_large_cached_add(long bytes);    // freed large blocks kept for reuse
// Record the peak of (bytes in lane pages + live large blocks). Cheap; called on slow paths.
void stats_peak_update();
void stats_get(km_stats* out);              // walks the segments for the exact bytes in use
void stats_print();                         // KMALLOC_STATS=1 at exit; km_stats_print()

}  // namespace km
