// foreign.cpp — other heaps' cells kept for reuse by the thread that freed them (foreign.h).
#include "core/foreign.h"

namespace km {
namespace {
uint32_t kept(const Page* f) {
  int32_t n = int32_t(f->carved - f->used);   // a pop a fork cut short may leave it at -1
  return n > 0 ? uint32_t(n) : 0;
}

void push(Page* f, Block* b) {
  b->next = f->free;
  f->free = b;
  f->carved++;
}

// Empty the lane's list (its cells are the caller's to deal with) and point its direct entries at
// the lane's current page.
void reset(Heap* h, unsigned lane) {
  Page* f = &h->foreign[lane];
  f->free = nullptr;
  f->carved = f->used = 0;
  set_direct(h, lane, h->lane_page[lane]);
}

// Hand the cells of one lane's list to their owners; the list is empty afterwards.
void flush_lane(Heap* h, unsigned lane) {
  Block* b = h->foreign[lane].free;
  reset(h, lane);
  while (b) {
    Block* next = b->next;
    Page* page = page_of(segment_of(b), b);
    Heap* owner = page_heap(page);
    if (owner == h) owner_free(h, page, b);   // its page came to h meanwhile (heap_reclaim)
    else remote_hand_over(owner, b, page->cell_size);
    b = next;
  }
}

// foreign_keep's push when the list is full (the older cells go home first) or empty (the lane's
// direct entries turn to it). Out of line, so that the common push saves no registers.
KM_NOINLINE bool keep_slow(Heap* h, unsigned lane, Block* b) {
  HeapBusy busy(h, false);
  Page* f = &h->foreign[lane];
  if (kept(f) >= foreign_limit(lane)) flush_lane(h, lane);
  push(f, b);
  if (!b->next) set_direct(h, lane, f);
  return true;
}
}  // namespace

bool foreign_keep(Heap* h, Page* page, Block* b) {
  unsigned lane = page->lane;   // 0 for a span: the unsigned test below turns it away too
  if (lane - 1 >= kForeignLanes - 1 || !h->keeps_foreign || page_has(page, kPageSecure) ||
      h->lane_page[lane] == &g_empty_page ||
      page_heap(page)->remote.abandoned.load(std::memory_order_relaxed))
    return false;
  Page* f = &h->foreign[lane];
  if (KM_UNLIKELY(!f->free || kept(f) >= foreign_limit(lane))) return keep_slow(h, lane, b);
  HeapBusy busy(h, false);   // a list half changed is a torn heap for a fork child (h keeps_foreign:
                             // not the orphan heap, so no test of it)
  push(f, b);
  return true;
}

void foreign_restore(Heap* h, unsigned lane) {
  if (!h->foreign[lane].free) reset(h, lane);
}

void foreign_flush(Heap* h) {
  HeapBusy busy(h);
  for (unsigned lane = 1; lane < kForeignLanes; ++lane)
    if (h->foreign[lane].free) flush_lane(h, lane);
}

void foreign_fork_child(Heap* h) {
  for (unsigned lane = 1; lane < kForeignLanes; ++lane) reset(h, lane);   // the cells are dropped
}

size_t foreign_bytes(const Heap* h) {
  size_t bytes = 0;
  for (unsigned lane = 1; lane < kForeignLanes; ++lane)
    bytes += size_t(kept(&h->foreign[lane])) * lane_size(lane);
  return bytes;
}

}  // namespace km
