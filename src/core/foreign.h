// foreign.h — cells of other threads' pages that this thread freed, kept a while for its own next
// mallocs of the same size before they go back to their owners.
//
// A block born on thread A and freed by thread B (a server handing requests between threads,
// larson) would otherwise travel back to A (B's outgoing batch, A's remote stack, A's page) while B,
// which just touched it, takes a fresh cell of the same size. B hands it out again instead, warm in
// its cache. The owner's accounting does not change: for A's page the cell stays handed out until it
// comes back through A's remote stack, whoever holds it meanwhile.
//
// Invariants: Heap::foreign[l] is a Page outside every segment. Its `free` list holds only cells of
// lane l of other heaps' plain pages, each tagged free with its own page's key (so a second free is
// caught). `carved` counts the cells pushed and `used` (the fast path's ++) those popped: carved -
// used wait, at most foreign_limit(l). While the list is not empty the lane's `direct` entries point
// at foreign[l], so malloc's fast path pops from it; when it runs dry the next malloc of the lane
// misses into heap_alloc_slow, which points them back at the lane's current page (foreign_restore).
// Only the owner touches them. Kept cells go to their owners on overflow, on trim and thread exit,
// and every kForeignFlushTicks slow paths, so an idle lane does not hold them for ever.
//
// Fork: a thread cut short in a pop from foreign[l] may finish that pop in the child (a fork from a
// signal handler), so a fork child drops the lists of the heaps it inherits instead of handing their
// cells over: at most foreign_limit(l) cells per lane stay handed out for ever (their pages are
// thinned around them), never a cell handed out twice.
#pragma once
#include "core/heap.h"

namespace km {

constexpr uint32_t kForeignFlushTicks = 256;

// Cells kept per lane: about one OS page of them, 4 to 32 (a table: no division on free's path).
struct ForeignLimits {
  uint8_t n[kForeignLanes];
};
constexpr ForeignLimits make_foreign_limits() {
  ForeignLimits t{};
  for (unsigned l = 1; l < kForeignLanes; ++l) {
    size_t n = 4096 / lane_size_formula(l);
    t.n[l] = uint8_t(n > 32 ? 32 : n < 4 ? 4 : n);
  }
  return t;
}
inline constexpr ForeignLimits kForeignLimits = make_foreign_limits();
KM_INLINE uint32_t foreign_limit(unsigned lane) { return kForeignLimits.n[lane]; }

// b, a cell of another heap's page `page`, just tagged free by the calling thread: kept in its heap h
// for reuse (true), or false when it does not qualify (the caller hands it over). It qualifies when
// h is a thread's own heap, the page is a plain lane page of a direct lane whose owner has not
// exited (an exited thread's memory must drain), and h allocates from that lane (a thread that only
// frees, a consumer, sends its frees straight back).
bool foreign_keep(Heap* h, Page* page, Block* b);
// The lane's kept cells ran out: its direct entries point at its current page again.
void foreign_restore(Heap* h, unsigned lane);
// Every kept cell of h goes to its owner (the caller is h's owner, or holds h).
void foreign_flush(Heap* h);
// A fork child's inherited heap h: its kept cells are dropped, its direct entries restored.
void foreign_fork_child(Heap* h);
// Bytes kept in h's lists (stats: free for "in use"). Any thread; approximate while h's owner runs.
size_t foreign_bytes(const Heap* h);

KM_INLINE bool is_foreign_list(const Heap* h, const Page* pg) {
  return pg >= h->foreign && pg < h->foreign + kForeignLanes;
}

}  // namespace km
