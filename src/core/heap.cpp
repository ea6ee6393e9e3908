// heap.cpp — a heap's pages: lane lists, pages set up and retired, the retiring ring, the heap's
// segments and slots, collection of its remote frees, adoption of an exited thread's pages and
// thinning. Owner thread only, but for the registry of all heaps (stats) and the pool (pool.h).
#include "core/heap.h"

#include <cstdint>
#include <new>

#include "core/diag.h"
#include "core/foreign.h"
#include "core/invariants.h"
#include "core/meta.h"
#include "core/options.h"
#include "core/pool.h"
#include "core/secure.h"
#include "core/span.h"
#include "core/thin.h"
#include "core/thread.h"
#include "platform/os.h"

namespace km {

// ============================================================================ state

constinit Page g_empty_page{};
// Threads start on g_empty_heap (nothing set up yet) and end on g_dead_heap (their heap went to the
// pool); both own nothing, so every malloc misses into the slow path and every free is "remote".
constinit Heap g_empty_heap(&g_empty_page);
constinit Heap g_dead_heap(&g_empty_page);
constinit thread_local Heap* tl_heap = &g_empty_heap;

namespace {
std::atomic<size_t> g_heap_count{0};       // heaps ever made (they are reused, never freed)
std::atomic<Heap*> g_all_heaps{nullptr};   // every heap ever made, through Heap::all_next
std::atomic<size_t> g_heapless_remote{0};  // remote frees by threads without a heap of their own
}  // namespace

Heap* heap_new(bool orphan) {
  void* mem = meta_alloc(sizeof(Heap));
  if (!mem) return nullptr;
  Heap* h = new (mem) Heap(&g_empty_page);
  h->owner_id = reinterpret_cast<uintptr_t>(h);   // no thread runs it yet (heap_acquire)
  h->orphan = orphan;
  h->keeps_foreign = !orphan;
  stats_register(&h->stats);
  g_heap_count.fetch_add(1, std::memory_order_relaxed);
  Heap* head = g_all_heaps.load(std::memory_order_relaxed);
  do h->all_next = head;
  while (!g_all_heaps.compare_exchange_weak(head, h, std::memory_order_release, std::memory_order_relaxed));
  return h;
}

void heap_set_owner(Heap* h, uintptr_t id) {
  h->owner_id = id;
  for (Segment* s = h->segments; s; s = s->heap_next)
    for (unsigned i = kFirstSlot; i < kSlotsPerSegment; ++i)
      if (s->slot_page[i] == i && s->pages[i].cell_size != 0) page_set_heap(&s->pages[i], h, id);
}

size_t heap_count() { return g_heap_count.load(std::memory_order_relaxed); }

Heap* heaps_all() { return g_all_heaps.load(std::memory_order_acquire); }

void count_remote_free(uint32_t bytes) {
  Heap* me = tl_heap;
  if (me != &g_empty_heap && me != &g_dead_heap)
    __atomic_store_n(&me->remote_freed, me->remote_freed + bytes, __ATOMIC_RELAXED);
  else
    g_heapless_remote.fetch_add(bytes, std::memory_order_relaxed);
}

void remote_hand_over(Heap* owner, Block* b, uint32_t bytes) {
  // Counted before it is in the batch: from here on it is free for "in use" (remote.h).
  count_remote_free(bytes);
  Heap* me = tl_heap;
  if (KM_UNLIKELY(me == &g_empty_heap || me == &g_dead_heap)) return remote_push(&owner->remote, b);
  HeapBusy busy(me);   // a batch half appended is a torn heap for a fork child
  remote_batch_add(&me->outgoing, &owner->remote, b, bytes);
}

size_t heaps_remote_pending() {
  long pending = long(g_heapless_remote.load(std::memory_order_relaxed));
  for (Heap* h = g_all_heaps.load(std::memory_order_acquire); h; h = h->all_next)
    pending += long(__atomic_load_n(&h->remote_freed, __ATOMIC_RELAXED)) -
               long(__atomic_load_n(&h->remote_collected, __ATOMIC_RELAXED)) + long(foreign_bytes(h));
  return pending > 0 ? size_t(pending) : 0;
}

uint64_t heaps_collect_seq() {
  uint64_t sum = 0, under_way = 0;
  for (Heap* h = g_all_heaps.load(std::memory_order_acquire); h; h = h->all_next) {
    if (h->stranded) continue;   // a fork child's torn heap: nothing collects it any more
    uint32_t seq = __atomic_load_n(&h->collect_seq, __ATOMIC_ACQUIRE);
    sum += seq;   // 32-bit counts: the sum stays far below bit 63
    under_way |= seq & 1;
  }
  return sum | (under_way << 63);
}

// ============================================================================ lane lists
//
// Why first in, first out, and not the fullest page first (packing, as tried before): a full page
// that gets one cell back and is taken soon gives one malloc per slow path. Measured against packing
// (interleaved runs): larson 0.87 -> 0.77 s, xmalloc 0.58 -> 0.35, handoff-mix 0.40 -> 0.35, churn
// 0.27 -> 0.24 with peak RSS 15.7 -> 13.3 MiB, and the A/B workloads' peaks within 1%.

namespace {

void list_push_front(Heap* h, Page* page) {
  Page* head = h->lane_page[page->lane];
  page->prev = nullptr;
  page->next = head == &g_empty_page ? nullptr : head;
  if (page->next) page->next->prev = page;
  else h->lane_last[page->lane] = page;
  set_lane_page(h, page->lane, page);
}

void list_push_back(Heap* h, Page* page) {
  Page* last = h->lane_last[page->lane];
  if (!last) return list_push_front(h, page);
  page->prev = last;
  page->next = nullptr;
  last->next = page;
  h->lane_last[page->lane] = page;
}

void list_remove(Heap* h, Page* page) {
  if (page->prev) page->prev->next = page->next;
  else set_lane_page(h, page->lane, page->next ? page->next : &g_empty_page);
  if (page->next) page->next->prev = page->prev;
  else h->lane_last[page->lane] = page->prev;
  page->next = page->prev = nullptr;
}

// ============================================================================ pages in a heap

Page* page_new(Heap* h, unsigned lane) {
  Segment* s;
  bool zero = false;
  unsigned n = slots_for_lane(lane);
  unsigned first = heap_take_slots(h, n, &s, &zero);
  if (!first) return nullptr;
  segment_map_slots(s, first, first, n);
  Page* pg = &s->pages[first];
  char* start = reinterpret_cast<char*>(s) + (size_t(first) << kSlotShift);
  if (!page_setup(pg, start, size_t(n) << kSlotShift, n, lane, lane_size(lane),
                  h, h->owner_id, zero)) {
    segment_give_slots(s, first, n);
    return nullptr;
  }
  stats_page_add(&h->stats, lane, long(pg->capacity) * long(pg->cell_size));
  return pg;
}

// A page with no cell in use goes back to its segment's free slots.
void page_retire(Heap* h, Page* pg) {
  KM_CHECK_PAGE(pg, h->lane_page[pg->lane] == pg);
  if (!page_has(pg, kPageFull)) list_remove(h, pg);
  Segment* s = segment_of(pg->start);
  unsigned first = page_first_slot(s, pg);
  unsigned n = pg->slots;
  stats_page_add(&h->stats, pg->lane, -long(pg->capacity) * long(pg->cell_size));
  page_teardown(pg, size_t(n) << kSlotShift);
  heap_give_slots(h, s, first, n);
}

// A heap keeps `keep` empty segments of its own (1 normally and on trim, 0 at thread exit), so that a
// loop allocating and freeing a page's worth touches no lock; more go to the spare pool, where any
// heap can adopt them without a system call.
void segment_release_if_spare(Heap* h, Segment* s, unsigned keep) {
  if (keep) {
    unsigned empty = 0;
    for (Segment* o = h->segments; o; o = o->heap_next) empty += o->free_slots == kAllSlotsFree;
    if (empty <= keep) return;
  }
  Segment** link = &h->segments;
  while (*link != s) link = &(*link)->heap_next;
  *link = s->heap_next;
  segment_retire(s);
}

// ---- retiring: an emptied page waits a little before it goes back to its segment

void retiring_drop(Heap* h, unsigned i) {
  Page* pg = h->retiring[i];
  pg->retiring = 0;
  h->retiring_slots -= pg->slots;
  --h->retiring_count;
  h->retiring[i] = h->retiring[h->retiring_count];
  h->retiring_tick[i] = h->retiring_tick[h->retiring_count];
}

// Retire the waiting pages that are still empty and have waited long enough (all of them: force);
// forget those that were used again.
void retiring_sweep(Heap* h, bool force) {
  for (unsigned i = 0; i < h->retiring_count;) {
    Page* pg = h->retiring[i];
    if (pg->used != 0) {
      retiring_drop(h, i);
    } else if (force || h->tick - h->retiring_tick[i] >= Heap::kRetireAfter) {
      retiring_drop(h, i);
      page_retire(h, pg);
    } else {
      ++i;
    }
  }
}

// An emptied or unfull page is on its lane list again.
void page_unfull(Heap* h, Page* pg) {
  if (!page_has(pg, kPageFull)) return;
  page_clear(pg, kPageFull);
  list_push_back(h, pg);
}

}  // namespace

// A page whose last cell came back: never a current page (kUsedCurrent, page.h), but a full page
// may become one here, as its lane's only page, and stays. Others wait in `retiring` to be reused or
// retired.
void page_emptied(Heap* h, Page* pg) {
  if (pg->span) return span_release(h, pg);
  page_unfull(h, pg);
  if (h->lane_page[pg->lane] == pg && pg->next == nullptr) return;
  if (pg->retiring) return;
  while (h->retiring_count > 0 && (h->retiring_count == Heap::kRetiringMax ||
                                   h->retiring_slots + pg->slots > Heap::kRetiringSlots)) {
    unsigned oldest = 0;   // make room: the longest-waiting page goes first (or is forgotten if used)
    for (unsigned i = 1; i < h->retiring_count; ++i)
      if (h->retiring_tick[i] < h->retiring_tick[oldest]) oldest = i;
    Page* old = h->retiring[oldest];
    retiring_drop(h, oldest);
    if (old->used == 0) page_retire(h, old);
  }
  if (pg->slots > Heap::kRetiringSlots) return page_retire(h, pg);
  pg->retiring = 1;
  h->retiring_slots += pg->slots;
  h->retiring_tick[h->retiring_count] = h->tick;
  h->retiring[h->retiring_count++] = pg;
}

void owner_free(Heap* h, Page* pg, Block* b) {
  if (pg->span) return span_release(h, pg);
  page_push(pg, b);
  if (--pg->used == 0) return page_emptied(h, pg);
  page_unfull(h, pg);   // it has a free cell again
}

// ============================================================================ a fork child's heap
//
// The forking thread may have been in a malloc fast path (fork from a signal handler), holding a cell
// of a lane's current page that it has read from `free` but not yet unlinked: if the handler returns,
// that pop completes. The child's mallocs must not pop the same cell first, so each current page goes
// off its list, flagged full like an exhausted page; a free of one of its cells puts it back
// (page_unfull), and a handler that allocates in the child meanwhile uses the lane's other pages. Left
// open: a handler that frees into that page and then allocates it empty before it returns.

void heap_fork_inherit(Heap* h) {
  foreign_fork_child(h);   // before the batch: a pop cut short may yet finish (foreign.h)
  remote_batch_flush(&h->outgoing);   // whole (the heap is not busy): a pooled heap's must be empty
#if KM_CHECKS
  for (Segment* s = h->segments; s; s = s->heap_next)
    for (unsigned i = kFirstSlot; i < kSlotsPerSegment; ++i)
      if (s->slot_page[i] == i) s->pages[i].inherited = 1;
#endif
}

void heap_fork_child(Heap* h) {
  for (unsigned lane = 1; lane < kLaneCount; ++lane) {
    Page* pg = h->lane_page[lane];
    if (pg == &g_empty_page) continue;
    list_remove(h, pg);
    page_set(pg, kPageFull);
  }
}

// ============================================================================ adopting an exited thread's pages
//
// A pooled heap keeps the pages that still hold live cells when its thread exits. A running heap
// that needs a page of a lane, or free slots, takes one such heap out of the pool (then nobody else
// can touch it), collects its remote frees, and adopts one of its segments: the one holding the
// pooled heap's first page of that lane with a free cell, else one with free slots. Each page of the
// segment changes owner, so a free that read the old owner pushes onto the old heap's remote stack,
// which forwards it (collect_remote). One segment at a time: a thread that needs one small block
// must not take over an exited thread's whole heap (and then, idle, keep the frees of all its cells
// waiting on its remote stack); the rest stays pooled, drained by the purger, for the next need.

namespace {
// Move segment s with every page in it from heap `from` to heap `to` (both held by the caller).
void segment_move(Heap* from, Heap* to, Segment* s) {
  for (unsigned i = kFirstSlot; i < kSlotsPerSegment; ++i) {
    Page* pg = &s->pages[i];
    if (s->slot_page[i] != i || pg->cell_size == 0) continue;
    bool listed = !pg->span && !page_has(pg, kPageFull);   // every other lane page is on a list
    if (listed) list_remove(from, pg);
    page_set_heap(pg, to, to->owner_id);
    if (listed) list_push_back(to, pg);
  }
  Segment** link = &from->segments;
  while (*link != s) link = &(*link)->heap_next;
  *link = s->heap_next;
  s->heap_next = to->segments;
  to->segments = s;
}

// lane: h needs a page of it (0: h needs free slots).
bool heap_reclaim(Heap* h, unsigned lane) {
  if (h->orphan) return false;
  Heap* old = pool_take_owning();
  if (!old) return false;
  collect_remote(old);
  retiring_sweep(old, true);
  Segment* take = nullptr;
  if (lane && old->lane_page[lane] != &g_empty_page) take = segment_of(old->lane_page[lane]->start);
  for (Segment* s = old->segments; s && !take; s = s->heap_next)
    if (s->free_slots) take = s;
  if (take) {
    segment_move(old, h, take);
    collect_remote(old);   // frees that raced with the move: forwarded to h
  }
  pool_put(old, old->segments != nullptr);
  return take != nullptr;
}
}  // namespace

// ============================================================================ slots

// Slots still resident in any of h's segments before clean ones in the first that has room: a page
// set up in purged slots while dirty ones wait in another segment faults in memory that the purge
// then gives back (churn's RSS went up and down by 1.5 MiB every purge delay, 13.3 MiB peak).
unsigned heap_take_slots(Heap* h, unsigned n, Segment** seg, bool* zero) {
  for (bool reclaimed = false;; reclaimed = true) {
    for (int dirty_only = 1; dirty_only >= 0; --dirty_only) {
      for (Segment* s = h->segments; s; s = s->heap_next) {
        // Only this thread adds free slots; the purger only clears dirty bits: peeks need no lock.
        if (s->free_slots == 0 || (dirty_only && !__atomic_load_n(&s->dirty_slots, __ATOMIC_RELAXED)))
          continue;
        KM_CHECK_SEGMENT(s);
        if (unsigned first = segment_take_slots(s, n, zero, dirty_only)) {
          *seg = s;
          return first;
        }
      }
    }
    if (reclaimed || !heap_reclaim(h, 0)) break;
  }
  Segment* s = segment_create();
  if (!s) return 0;
  s->heap_next = h->segments;
  h->segments = s;
  *seg = s;
  return segment_take_slots(s, n, zero);
}

void heap_give_slots(Heap* h, Segment* s, unsigned first, unsigned n) {
  segment_give_slots(s, first, n);
  KM_CHECK_SEGMENT(s);
  if (s->free_slots == kAllSlotsFree) segment_release_if_spare(h, s, 1);
}

// ============================================================================ remote frees

namespace {
// The purger's sink notes (sink.h): each page's noted cells were remote frees, given back with their
// OS pages while the owner idled. They become dropped cells in thinned OS pages (thin.h), collected
// as the remote frees they were. A page that moved to another heap since (heap_reclaim) goes on to
// that heap's list, still listed.
void collect_sunk(Heap* h, Page* pg) {
  while (pg) {
    Page* next = pg->sunk_next;
    Heap* owner = page_heap(pg);
    if (KM_UNLIKELY(owner != h)) {
      remote_push_sunk(&owner->remote, pg);
      pg = next;
      continue;
    }
    // The purger may be adding to the note (a few stores): wait for it.
    for (uint8_t st = kSunkListed; !__atomic_compare_exchange_n(&pg->sunk_state, &st, kSunkTaking, false,
                                                                __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
         st = kSunkListed)
      os::cpu_relax();
    uint32_t n = pg->sunk_cells;
    uint64_t* bits = sunk_bits(segment_of(pg->start), pg);
    for (unsigned i = 0; i < 4; ++i) {
      pg->thinned[i] |= bits[i];
      bits[i] = 0;
    }
    pg->sunk_cells = 0;
    __atomic_store_n(&pg->sunk_state, kSunkNone, __ATOMIC_RELEASE);
    pg->dropped += n;
    __atomic_store_n(&h->remote_collected, h->remote_collected + size_t(n) * pg->cell_size,
                     __ATOMIC_RELAXED);
    pg->used -= n;
    if (pg->used == 0) page_emptied(h, pg);
    else page_unfull(h, pg);   // its dropped cells are free ones (page_refill thickens it)
    KM_CHECK_PAGE(pg, h->lane_page[pg->lane] == pg);
    pg = next;
  }
}
}  // namespace

void collect_remote_slice(Heap* h, size_t limit) {
  Block* b = h->remote_backlog;
  if (!b) b = remote_take(&h->remote);
  if (!b) b = remote_take_parked(&h->remote);
  Page* sunk = remote_take_sunk(&h->remote);
  if (!b && !sunk) return;
  __atomic_store_n(&h->collect_seq, h->collect_seq + 1, __ATOMIC_RELAXED);   // odd: under way
  __atomic_thread_fence(__ATOMIC_RELEASE);
  collect_sunk(h, sunk);
  for (; b && limit; --limit) {
    check_remote_link(b);
    Block* next = b->next;
    Page* pg = page_of(segment_of(b), b);
    __atomic_store_n(&h->remote_collected, h->remote_collected + pg->cell_size, __ATOMIC_RELAXED);
    // Its page moved to another heap (heap_reclaim) after the freeing thread read the owner: forward.
    if (KM_UNLIKELY(page_heap(pg) != h)) {
      count_remote_free(pg->cell_size);
      remote_push(&page_heap(pg)->remote, b);
    } else {
      owner_free(h, pg, b);
    }
    b = next;
  }
  h->remote_backlog = b;
  __atomic_store_n(&h->collect_seq, h->collect_seq + 1, __ATOMIC_RELEASE);
}

void collect_remote(Heap* h) {
  if (h->remote_backlog) collect_remote_slice(h, SIZE_MAX);   // the backlog (it takes nothing new)
  collect_remote_slice(h, SIZE_MAX);                          // then the stack, once
  collect_remote_slice(h, SIZE_MAX);                          // then the purger's parked cells
}

// ============================================================================ allocation

namespace {

// A current page that emptied with pages behind it stays (kUsedCurrent: free's fast path does not
// stop for it). If malloc has not moved to it since the last pass its lane is idle: retire it as any
// other emptied page, so that an idle lane keeps no empty page in front of its partly used ones.
void retire_idle_current(Heap* h) {
  for (unsigned lane = 1; lane < kLaneCount; ++lane) {
    Page* pg = h->lane_page[lane];
    if (pg != &g_empty_page && page_live(pg) == 0 && pg->next && !pg->retiring &&
        pg->visited != h->thin_pass)
      page_retire(h, pg);
  }
}

// Every 64 slow paths, thin if the purge delay has passed since the last time (never with -1).
void heap_thin_if_due(Heap* h) {
  long delay = option(Opt::purge_delay_ms);
  if (delay < 0) return;
  int64_t now = os::now_ms();
  if (now - h->thin_ms < delay) return;
  h->thin_ms = now;
  retire_idle_current(h);
  heap_thin(h, false);
}

}  // namespace

// Remote frees collected per slow path: bounded work per malloc (the rest waits in the backlog),
// yet more than a page's worth of small cells, so that a heap fed by other threads keeps up.
constexpr size_t kCollectSlice = 512;

void* alloc_from(Heap* h, size_t size, unsigned lane, bool zero) {
  if (remote_waiting(h)) collect_remote_slice(h, kCollectSlice);
  remote_batch_flush(&h->outgoing);   // a slow path: what this thread freed to others goes over
  __atomic_store_n(&h->tick, h->tick + 1, __ATOMIC_RELAXED);   // the purger reads it (sink.h)
  if ((h->tick & 15) == 0 && h->retiring_count) retiring_sweep(h, false);
  if ((h->tick & 63) == 0) heap_thin_if_due(h);
  if ((h->tick & (kForeignFlushTicks - 1)) == 0) foreign_flush(h);   // an idle lane's kept cells
  bool collected = false;
  for (Page* pg = h->lane_page[lane];; pg = h->lane_page[lane]) {
    if (pg == &g_empty_page && !collected && remote_waiting(h)) {   // before a new page: all of them
      collected = true;
      collect_remote(h);
      continue;
    }
    if (pg == &g_empty_page && heap_reclaim(h, lane)) continue;   // an exited thread's pages first
    if (pg == &g_empty_page) {
      pg = page_new(h, lane);
      if (!pg) return nullptr;
      list_push_front(h, pg);
    }
    KM_CHECK_PAGE(pg, h->lane_page[pg->lane] == pg);
    if (page_has(pg, kPageSecure)) {
      if (secure_has_cell(pg)) return secure_pop(pg, zero, size);
    } else if (page_refill(pg)) {
      pg->visited = h->thin_pass;
      return page_pop(pg, zero);
    }
    list_remove(h, pg);   // exhausted: off the list until a cell comes back
    page_set(pg, kPageFull);
  }
}

// Pages malloc refilled from since the last pass are in their lane's rotation: their free cells are
// handed out again soon, and a purged OS page would cost a fault then. On random-table (sizes
// churning in every lane), thinning them took 55,000 page faults and 0.62 s, against 18,500 and
// 0.44 s without, for the same peak RSS.
void heap_thin(Heap* h, bool all) {
  // Each run given back is a system call; while other threads run, it is also a TLB shootdown that
  // stops them: then single free OS pages stay (ab handoff: 5,711 madvise calls for 7,779 OS pages
  // before, and 6% more wall time). A single thread pays only the call for them (without them, ab
  // server's peak RSS goes from 255 to 279 MiB).
  unsigned min_run = live_heaps() > 1 ? 2 : 1;
  for (Segment* s = h->segments; s; s = s->heap_next) {
    for (unsigned i = kFirstSlot; i < kSlotsPerSegment; ++i) {
      Page* pg = &s->pages[i];
      if (s->slot_page[i] != i || h->lane_page[pg->lane] == pg) continue;
      if (!all && pg->visited == h->thin_pass) continue;
      if (page_thin_candidate(pg)) page_thin(pg, min_run);
    }
  }
  h->thin_pass++;
}

void heap_collect(Heap* h, bool retire_current) {
  foreign_flush(h);   // kept cells of other heaps first: into the batch that goes next
  remote_batch_flush(&h->outgoing);   // trim and thread exit send what this thread freed to others
  collect_remote(h);
  retiring_sweep(h, true);
  // Empty pages first (a current one too, unless it is its lane's only page), so that thinning
  // sees the lanes' current pages as they will be, and does not purge what is retired anyway.
  for (unsigned lane = 1; lane < kLaneCount; ++lane) {
    Page* pg = h->lane_page[lane];
    while (pg != &g_empty_page && pg != nullptr) {
      Page* next = pg->next;
      if (page_live(pg) == 0 && (retire_current || next != nullptr || pg->prev != nullptr))
        page_retire(h, pg);
      pg = next;
    }
  }
  // trim thins at once; thread exit and the purger's drain too, unless the delay is -1 (never)
  if (!retire_current || option(Opt::purge_delay_ms) >= 0) heap_thin(h, true);
  for (Segment* s = h->segments; s;) {
    Segment* next = s->heap_next;
    if (s->free_slots == kAllSlotsFree) segment_release_if_spare(h, s, retire_current ? 0 : 1);
    s = next;
  }
}

}  // namespace km
