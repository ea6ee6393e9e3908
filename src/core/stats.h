// stats.h — the allocator's counters: bumped on slow paths only (never per malloc); report.h reads them.
//
// What lane pages and spans hold is counted per heap (HeapStats), by the heap's thread alone, and
// summed over every heap when read: page set-ups and retirements on many threads write no shared
// line. Two peaks, both shared maximums:
// - what pages hold (lane pages' cells, in use or free, plus large blocks), sampled when a heap grows
//   kPeakStep past what it held at its last sample, and when the counters are read: page granularity,
//   and it can miss a peak that heaps reach together without one of them passing its own mark;
// - what the program holds (in use), which no fast path counts: report_poll (report.h) walks the pages
//   for it after a slow path once what pages hold has grown by a sixteenth (or kPeakStep) since the
//   last such walk, and every read raises it too. A lower bound of the true peak, within about that
//   sixteenth of growth.
#pragma once
#include <atomic>
#include <cstddef>

#include "core/size_class.h"

namespace km {

// One heap's counters. Written by the thread that owns the heap (or holds it exclusively: the
// orphan heap's lock, the purger draining a pooled heap) with plain read-modify-writes; read by any
// thread (relaxed atomics). A page set up by one heap and retired by another after a reclaim leaves
// one positive and one negative: only the sum means anything.
struct HeapStats {
  std::atomic<long> page_bytes{0};   // cell capacity of its lane pages
  std::atomic<long> span_bytes{0};   // usable bytes of its live spans
  std::atomic<long> spans{0};
  std::atomic<long> lane_pages[kLaneCount] = {};
  long sampled = 0;                  // owner: page_bytes + span_bytes at the last peak sample
  HeapStats* next = nullptr;         // every registered one (never removed)
};
// Count st in the sums from now on (a new heap; heaps are never freed).
void stats_register(HeapStats* st);

void stats_metadata_add(long bytes);
// A lane page was set up (+) or retired (-): its cell capacity in bytes.
void stats_page_add(HeapStats* st, unsigned lane, long bytes);
// A span or huge block was handed out (+) or freed (-): its usable bytes; block: it is a block coming
// or going (counted), not a resize. Huge blocks have no heap: their counters are shared (each one
// comes with a system call anyway).
void stats_span_add(HeapStats* st, long bytes, bool block = true);
void stats_huge_add(long bytes, bool block = true);

// The counters as they are now (report.cpp adds what it counts by walking the heaps).
struct StatCounters {
  long metadata, page_bytes, span_bytes, spans, huge_bytes, huges;
  long held_peak;     // highest page_bytes + span_bytes + huge_bytes
  long in_use_peak;   // highest in-use bytes sampled (stats_in_use_sampled)
  long lane_pages[kLaneCount], lane_pages_peak[kLaneCount];
};
void stats_counters(StatCounters* out);
// What lane pages and large blocks hold, their free cells included.
inline long stats_held(const StatCounters& c) { return c.page_bytes + c.span_bytes + c.huge_bytes; }

// What pages hold has passed the mark set at the last in-use sample: it is time for another. The
// first caller to see it takes it (the flag clears), so one thread walks.
bool stats_take_sample_due();
// The in-use sample could not be taken (a lock was busy): the next slow path tries again.
void stats_sample_again();
// In use was `in_use` bytes while pages held `held`: raise the in-use peak, set the next mark.
void stats_in_use_sampled(long in_use, long held);
// Start both peaks again from what is held and in use now (tests measure one phase's peak).
void stats_reset_peaks(long in_use);

}  // namespace km
