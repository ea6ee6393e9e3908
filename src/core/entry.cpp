// entry.cpp — the slow paths behind the inline fast paths of heap.h: the thread's heap for an
// allocation, the checks and the owner-or-remote decision of a free, and the purge poll (purge.h)
// after any of them may have left memory waiting.
#include <cerrno>

#include "core/diag.h"
#include "core/foreign.h"
#include "core/fork.h"
#include "core/heap.h"
#include "core/huge.h"
#include "core/purge.h"
#include "core/report.h"
#include "core/secure.h"
#include "core/span.h"
#include "core/thread.h"

namespace km {

// The fork handlers go in when the library is loaded. From here, not from fork.cpp: this file is
// always linked (the fast paths call it), so a static link (libkmalloc.a) keeps them too; a
// constructor in fork.cpp alone would be dropped with its unreferenced object file.
__attribute__((constructor)) static void entry_load() { fork_install(); }

namespace {
void* alloc_slow_unchecked(size_t size, unsigned lane, bool zero) {
  if (KM_UNLIKELY(secure_enabled())) {
    lane = secure_lane(size, lane);
    if (lane == 0) return span_alloc(size, zero);
  }
  SpinLock* held;
  Heap* h = heap_for_thread(&held);
  if (!h) return nullptr;
  void* p;
  {
    HeapBusy busy(h);
    p = alloc_from(h, size, lane, zero);
  }
  if (held) held->unlock();
  return p;
}

// Every miss that is not a quick refill: kept foreign cells that ran out, then the whole path.
KM_NOINLINE void* alloc_miss(size_t size, unsigned lane, bool zero) {
  Heap* h = tl_heap;
  if (size <= kDirectMax) {   // the kept foreign cells of a direct lane ran out: back to its page
    Page* d = h->direct[(size + 15) >> 4];
    if (KM_UNLIKELY(is_foreign_list(h, d)) && !d->free) {
      unsigned direct_lane = kLanes.small_lane[(size + 15) >> 4];
      foreign_restore(h, direct_lane);
      if (direct_lane == lane && !zero)
        if (Block* b = page_take(h->lane_page[lane])) return b;
    }
  }
  void* p = alloc_slow_unchecked(size, lane, zero);
  purge_poll();
  report_poll();
  if (KM_UNLIKELY(!p)) errno = ENOMEM;
  return p;
}
}  // namespace

void* heap_alloc_slow(size_t size, unsigned lane, bool zero) {
  // The common miss: the current page's `free` ran out (the fast path just popped it empty) but the
  // owner freed cells to it since. Swap them in and pop, right here with no call and no frame (a
  // loop that allocates and frees one medium block, a few cells to a carve batch, comes here every
  // few pairs), unless the direct entry points elsewhere (kept foreign cells), remote frees wait, or
  // it is time for the periodic work (every 16th miss takes the whole path: retiring, thinning, the
  // purge poll), or a single cell came back to a page that can carve more (page_refill adds a batch).
  Heap* h = tl_heap;
  Page* pg = h->lane_page[lane];
  Block* b = pg->local_free;
  if (b && (b->next || !page_can_carve(pg)) &&
      (size > kDirectMax || h->direct[(size + 15) >> 4] == pg) && (++h->quick_refills & 15) != 0 &&
      !remote_pending(&h->remote) && !page_has(pg, kPageSecure)) {
    HeapBusy busy(h, false);   // a refill half done is a torn page for a fork child (and tl_heap is
                               // never the orphan heap, which runs under its lock)
    page_swap_local(pg);
    page_take(pg);
    if (zero) zero_popped(pg, b);
    return b;
  }
  return alloc_miss(size, lane, zero);
}

void page_free_slow(Page* page) {
  Heap* h = tl_heap;
  {
    HeapBusy busy(h);
    page_emptied(h, page);
  }
  purge_poll();
}

namespace {
// A cell of another heap, already tagged free (a second free is caught from now on): to its owner,
// in the calling thread's outgoing batch (remote.h). If that push was the first onto an empty stack
// it noted the purger, which must run to act on it: it drains an exited thread's heap (a program
// whose allocating threads exited would otherwise keep those frees for ever) and gives back what an
// idle owner's frees emptied (sink.h; the owner may be blocked for good, and the freeing threads may
// have no slow path of their own). So the poll: one load while the purger runs, and its start
// otherwise (its thread gets its TLS from malloc, which a program counting its own allocations sees
// at that free).
void hand_over(Heap* owner, Page* page, Block* b) {
  remote_hand_over(owner, b, page->cell_size);
  purge_poll(true);
}
// A cell of the calling thread's heap that the fast path did not take back.
void own_free(Heap* h, Page* page, Block* b) {
  HeapBusy busy(h);
  owner_free(h, page, b);
}

// A cell that passed every check, of a page without canaries (plain, or a secure span) whose free tag
// is `tag`: our full page or span goes back at once; another heap's is tagged free first.
void free_checked(Block* b, Page* page, uintptr_t tag) {
  Heap* owner = page_heap(page);
  Heap* h = tl_heap;
  if (owner == h) return own_free(owner, page, b);     // our full page, or a span
  b->tag = tag;
  if (foreign_keep(h, page, b)) return;   // for this thread's next malloc of the size (foreign.h)
  hand_over(owner, page, b);
}
}  // namespace

void free_other(Block* b, Page* page) {
  // Secure pages: the fast path compared the plain tag, not their keyed one (a double free is found
  // there), and canaries are checked, cells scrubbed and links encoded.
  if (page_has(page, kPageSecure)) return free_slow(b, page);
  free_checked(b, page, plain_tag(page));
}

void free_slow(void* p, Page* page) {
  auto* b = static_cast<Block*>(p);
  if (page->cell_size == 0) fatal_pointer("free", "invalid pointer", p);
  if (!is_carved_cell(page, p)) fatal_pointer("free", "invalid pointer (not the start of a block)", p);
  if (b->tag == free_tag(page, p)) fatal_pointer("free", "double free", p);
  if (!has_canary(page)) return free_checked(b, page, free_tag(page, p));
  // The canary of a live cell (a freed secure cell is zeroed, so this comes after the double-free test).
  secure_check_free(page, b);
  Heap* owner = page_heap(page);
  if (owner == tl_heap) return own_free(owner, page, b);
  // Another thread's cell: scrub and tag it free now (so a second free is caught), then hand it over.
  secure_scrub(page, b);
  b->tag = free_tag(page, p);
  hand_over(owner, page, b);
}

void free_not_segment(void* p, const char* call) {
  if (p == nullptr) return;
  if (map_value(p) >= kMapHuge) {
    huge_free(p, call);
    return purge_poll();
  }
  fatal_pointer(call, "invalid pointer", p);
}

size_t cell_usable_size(const Page* pg, const void* p) {
  return has_canary(pg) ? secure_usable_size(pg, p) : pg->cell_size;
}

}  // namespace km
