// report.h — what the allocator holds, for km_stats_get and the KMALLOC_STATS summary: the counters
// of stats.h, plus the bytes in use, resident and pending counted by walking the segments and heaps.
#pragma once
#include <cstddef>

namespace km {

// One snapshot of the counters, what the public km_stats (kmalloc.h, where each is documented) holds:
// the core fills a Stats, the API copies it into a km_stats field by field (KM_STATS_FIELDS), so the
// core never includes the public header.
#define KM_STATS_FIELDS(X)                                                                        \
  X(in_use) X(peak_in_use) X(mapped) X(resident) X(metadata) X(large_in_use) X(large_cached)      \
  X(mmap_count) X(munmap_count) X(purge_count) X(purged) X(heaps) X(segments) X(span_count)       \
  X(span_bytes) X(huge_count) X(huge_bytes) X(dirty) X(process_resident)
struct Stats {
#define KM_STATS_FIELD(name) size_t name;
  KM_STATS_FIELDS(KM_STATS_FIELD)
#undef KM_STATS_FIELD
};

// Walks the segments for the exact bytes in use. os_walks false: resident, process_resident and
// dirty are left 0, for callers that do not show them and may call often (mallinfo: no mincore over
// every segment, no /proc read).
void stats_get(Stats* out, bool os_walks = true);
void stats_print();                         // KMALLOC_STATS=1 at exit; km_stats_print()
// After a slow-path allocation (as purge_poll): when what pages hold has grown past the mark
// (stats.h), walk them once for the bytes in use and raise its peak. Never waits for a lock.
void report_poll();
// Both peaks start again from now (tests: the peak of one phase).
void stats_reset_peaks_now();

}  // namespace km
