// heap.cpp — thread heaps: set-up on first use, the allocation slow path, page life (carve, refill,
// retire), frees from other threads, reclaim of exited threads' heaps, thread exit and the fork child.
#include "core/heap.h"

#include <cerrno>
#include <cstring>
#include <new>

#include "core/diag.h"
#include "core/invariants.h"
#include "core/meta.h"
#include "core/options.h"
#include "core/purge.h"
#include "core/runtime.h"
#include "core/secure.h"
#include "core/huge.h"
#include "core/span.h"
#include "core/thin.h"
#include "core/stats.h"
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
std::atomic<size_t> g_heap_count{0};   // heaps ever made (they are reused, never freed)
std::atomic<Heap*> g_all_heaps{nullptr};   // every heap ever made, through Heap::all_next
std::atomic<bool> g_pool_has_memory{false};  // some pooled heap may still own segments
std::atomic<size_t> g_heapless_remote{0};  // remote frees by threads without a heap of their own
std::atomic<int> g_live_heaps{0};      // heaps a thread of this process is using now
SpinLock g_pool_lock;          // guards the pool and every heap in it
Heap* g_pool = nullptr;        // heaps whose thread has exited
SpinLock g_orphan_lock;        // guards g_orphan
Heap* g_orphan = nullptr;      // serves threads that allocate after their heap went to the pool
os::ThreadKey g_thread_key;
std::atomic<bool> g_key_ready{false};
}  // namespace

size_t heap_count() { return g_heap_count.load(std::memory_order_relaxed); }

size_t heaps_remote_pending() {
  long pending = long(g_heapless_remote.load(std::memory_order_relaxed));
  for (Heap* h = g_all_heaps.load(std::memory_order_acquire); h; h = h->all_next)
    pending += long(__atomic_load_n(&h->remote_freed, __ATOMIC_RELAXED)) -
               long(__atomic_load_n(&h->remote_collected, __ATOMIC_RELAXED));
  return pending > 0 ? size_t(pending) : 0;
}
int live_heaps() { return g_live_heaps.load(std::memory_order_relaxed); }

// ============================================================================ lane lists

namespace {

void list_push_front(Heap* h, Page* page) {
  Page* head = h->lane_page[page->lane];
  page->prev = nullptr;
  page->next = head == &g_empty_page ? nullptr : head;
  if (page->next) page->next->prev = page;
  h->lane_page[page->lane] = page;
}

// Second place: a page that just got one cell back should not become the current page.
void list_push_second(Heap* h, Page* page) {
  Page* head = h->lane_page[page->lane];
  if (head == &g_empty_page) return list_push_front(h, page);
  page->prev = head;
  page->next = head->next;
  if (head->next) head->next->prev = page;
  head->next = page;
}

void list_remove(Heap* h, Page* page) {
  if (page->prev) page->prev->next = page->next;
  else h->lane_page[page->lane] = page->next ? page->next : &g_empty_page;
  if (page->next) page->next->prev = page->prev;
  page->next = page->prev = nullptr;
}

// ============================================================================ pages

// false: secure mode could not set the page's guard up; its slots went back to the segment.
bool page_init(Heap* h, Segment* s, unsigned first, unsigned lane, bool zero) {
  unsigned n = slots_for_lane(lane);
  segment_map_slots(s, first, first, n);
  Page* pg = &s->pages[first];
  size_t cell = lane_size(lane);
  *pg = Page{};
  pg->start = reinterpret_cast<char*>(s) + (size_t(first) << kSlotShift);
  pg->cell_size = uint32_t(cell);
  pg->recip = ((uint64_t(1) << 40) + cell - 1) / cell;
  size_t bytes = size_t(n) << kSlotShift;
  pg->capacity = uint32_t((secure_enabled() ? secure_page_bytes(bytes) : bytes) / cell);
  pg->owner = reinterpret_cast<uintptr_t>(h);
  pg->lane = uint8_t(lane);
  pg->slots = uint8_t(n);
  pg->zero_init = zero;
  if (secure_enabled()) {
    page_set(pg, kPageSecure);
    if (!secure_page_setup(pg, bytes)) {
      *pg = Page{};
      segment_give_slots(s, first, n);
      return false;
    }
  }
  stats_page_add(lane, long(pg->capacity) * long(cell));
  return true;
}

Page* page_new(Heap* h, unsigned lane) {
  Segment* s;
  bool zero = false;
  unsigned first = heap_take_slots(h, slots_for_lane(lane), &s, &zero);
  if (!first) return nullptr;
  return page_init(h, s, first, lane, zero) ? &s->pages[first] : nullptr;
}

// Thread a batch of never-used cells onto `free`, in address order.
// Carving lazily keeps untouched cells out of the resident set.
void page_carve(Page* pg) {
  uint32_t n = pg->capacity - pg->carved;
  uint32_t batch = uint32_t(16384 / pg->cell_size);
  if (batch < 1) batch = 1;
  if (n > batch) n = batch;
  char* first = pg->start + size_t(pg->carved) * pg->cell_size;
  Block* prev = nullptr;
  for (uint32_t i = n; i-- > 0;) {   // back to front, so the list runs in address order
    auto* b = reinterpret_cast<Block*>(first + size_t(i) * pg->cell_size);
    b->next = prev;
    b->tag = free_tag(pg, b);
    prev = b;
  }
  pg->free = prev;
  page_add_carved(pg, n);
  pg->free_is_fresh = pg->zero_init;
}

// Make `free` non-empty if the page has any cell to give. false: the page is full.
bool page_refill(Page* pg) {
  if (pg->free) return true;
  if (pg->local_free) {
    pg->free = pg->local_free;
    pg->local_free = nullptr;
    pg->free_is_fresh = 0;
    return true;
  }
  if (pg->dropped) return page_thicken(pg);   // cells in OS pages thinning gave back
  if (pg->carved < pg->capacity) {
    page_carve(pg);
    return true;
  }
  return false;
}

void* page_pop(Page* pg, bool zero) {
  Block* b = pg->free;
  pg->free = b->next;
  b->tag = 0;
  pg->used++;
  if (zero) zero_popped(pg, b);
  return b;
}

void segment_release_if_spare(Heap* h, Segment* s, unsigned keep);

// A page with no cell in use goes back to its segment's free slots.
void page_retire(Heap* h, Page* pg) {
  KM_CHECK_PAGE(pg);
  if (!page_has(pg, kPageFull)) list_remove(h, pg);
  Segment* s = segment_of(pg->start);
  unsigned first = page_first_slot(s, pg);
  unsigned n = pg->slots;
  if (page_has(pg, kPageSecure)) secure_page_teardown(pg, size_t(n) << kSlotShift);
  stats_page_add(pg->lane, -long(pg->capacity) * long(pg->cell_size));
  *pg = Page{};
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

// A page whose last cell came back. The only page of its lane stays (a loop that allocates and frees
// one object must not set up a page every time); others wait in `retiring` to be reused or retired.
void page_emptied(Heap* h, Page* pg) {
  if (pg->span) return span_release(h, pg);
  if (page_has(pg, kPageFull)) {   // off its lane list: it has cells again
    page_clear(pg, kPageFull);
    list_push_second(h, pg);
  }
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

// Owner-side free of a cell that passed the checks (tag already written by the caller or not).
void owner_push(Heap* h, Page* pg, Block* b) {
  if (pg->span) return span_release(h, pg);
  if (page_has(pg, kPageSecure)) secure_push(pg, b);
  else {
    b->next = pg->local_free;
    b->tag = free_tag(pg, b);
    pg->local_free = b;
  }
  if (--pg->used == 0) return page_emptied(h, pg);
  if (page_has(pg, kPageFull)) {   // it has a free cell again: back on its lane list
    page_clear(pg, kPageFull);
    list_push_second(h, pg);
  }
}

}  // namespace

// ---- reclaim: a running heap adopts what a heap of an exited thread still owns
//
// A pooled heap keeps the pages that still hold live cells when its thread exits. A running heap
// that needs a page or slots takes one such heap out of the pool (then nobody else can touch it),
// collects its remote frees, and moves every page and segment to itself: each page's owner changes,
// so a free that read the old owner pushes onto the old heap's remote stack, which forwards it
// (collect_remote). The emptied heap goes back to the pool for the next new thread. Never for the
// orphan heap: it runs under g_orphan_lock, which comes after the pool lock.
bool heap_reclaim(Heap* h) {
  if (!g_pool_has_memory.load(std::memory_order_relaxed) || h == g_orphan) return false;
  Heap* old = nullptr;
  {
    LockGuard g(g_pool_lock);
    for (Heap** link = &g_pool; *link; link = &(*link)->pool_next) {
      if ((*link)->segments) {
        old = *link;
        *link = old->pool_next;
        old->pool_next = nullptr;
        break;
      }
    }
    if (!old) g_pool_has_memory.store(false, std::memory_order_relaxed);
  }
  if (!old) return false;
  collect_remote(old);
  retiring_sweep(old, true);
  uintptr_t me = reinterpret_cast<uintptr_t>(h);
  Segment* last = nullptr;
  for (Segment* s = old->segments; s; s = s->heap_next) {
    for (unsigned i = kFirstSlot; i < kSlotsPerSegment; ++i) {
      Page* pg = &s->pages[i];
      if (s->slot_page[i] != i || pg->cell_size == 0) continue;
      __atomic_store_n(&pg->owner, me | (pg->owner & kPageFlags), __ATOMIC_RELAXED);
    }
    last = s;
  }
  for (unsigned lane = 1; lane < kLaneCount; ++lane) {
    for (Page* pg = old->lane_page[lane]; pg != &g_empty_page;) {
      Page* next = pg->next ? pg->next : &g_empty_page;
      list_push_second(h, pg);
      pg = next;
    }
    old->lane_page[lane] = &g_empty_page;
  }
  last->heap_next = h->segments;
  h->segments = old->segments;
  old->segments = nullptr;
  collect_remote(old);   // frees that raced with the move: forwarded to h
  LockGuard g(g_pool_lock);
  old->pool_next = g_pool;
  g_pool = old;
  return true;
}

unsigned heap_take_slots(Heap* h, unsigned n, Segment** seg, bool* zero) {
  for (bool reclaimed = false;; reclaimed = true) {
    for (Segment* s = h->segments; s; s = s->heap_next) {
      if (s->free_slots == 0) continue;   // only this thread changes free_slots: no lock to peek
      KM_CHECK_SEGMENT(s);
      if (unsigned first = segment_take_slots(s, n, zero)) {
        *seg = s;
        return first;
      }
    }
    if (reclaimed || !heap_reclaim(h)) break;
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

// Hand a freed cell (already tagged free) to the heap that owns its page: a lock-free push.
void remote_push(Heap* owner, Block* b, uint32_t bytes);

// Take every cell other threads freed to this heap and push each onto its page.
void collect_remote(Heap* h) {
  Block* b = h->remote.exchange(nullptr, std::memory_order_acquire);
  while (b) {
    // Secure mode: a remote link written after free (a use-after-free) is reported, not followed.
    if (KM_UNLIKELY(secure_enabled()) && !cell_is_free(b))
      fatal_pointer("free", "corrupted remote free list at", b);
    Block* next = b->next;
    Segment* s = segment_of(b);
    Page* pg = page_of(s, b);
    __atomic_store_n(&h->remote_collected, h->remote_collected + pg->cell_size, __ATOMIC_RELAXED);
    // Its page moved to another heap (heap_reclaim) after the freeing thread read the owner: forward.
    if (KM_UNLIKELY(page_heap(pg) != h)) remote_push(page_heap(pg), b, pg->cell_size);
    else owner_push(h, pg, b);
    b = next;
  }
}

namespace {

// Thin h's sparse pages (thin.h): every page of its segments but the current page of each lane.
void heap_thin(Heap* h) {
  for (Segment* s = h->segments; s; s = s->heap_next) {
    for (unsigned i = kFirstSlot; i < kSlotsPerSegment; ++i) {
      Page* pg = &s->pages[i];
      if (s->slot_page[i] != i || h->lane_page[pg->lane] == pg || !page_thin_candidate(pg)) continue;
      page_thin(pg);
    }
  }
}

// Every 64 slow paths, thin if the purge delay has passed since the last time (never with -1).
void heap_thin_if_due(Heap* h) {
  long delay = option(Opt::purge_delay_ms);
  if (delay < 0) return;
  int64_t now = os::now_ms();
  if (now - h->thin_ms < delay) return;
  h->thin_ms = now;
  heap_thin(h);
}

// Packing: the next page to allocate from is the fullest of the first kPackLook on the lane's list,
// so that live cells concentrate and sparse pages drain (then thinning and retiring give them back),
// as tcmalloc's span priorities and jemalloc's slab order do. A bounded look keeps it O(1).
constexpr unsigned kPackLook = 8;
void pack_front(Heap* h, unsigned lane) {
  Page* head = h->lane_page[lane];
  if (head == &g_empty_page || !head->next) return;
  Page* best = head;
  unsigned look = 0;
  for (Page* pg = head->next; pg && look < kPackLook; pg = pg->next, ++look)
    if (uint64_t(pg->used) * best->capacity > uint64_t(best->used) * pg->capacity) best = pg;
  if (best == head) return;
  list_remove(h, best);
  list_push_front(h, best);
}

// A cell of `lane` (for a request of `size` bytes) from heap h: current page, next pages, new page.
void* alloc_from(Heap* h, size_t size, unsigned lane, bool zero) {
  if (h->remote.load(std::memory_order_relaxed)) collect_remote(h);
  if ((++h->tick & 15) == 0 && h->retiring_count) retiring_sweep(h, false);
  if ((h->tick & 63) == 0) heap_thin_if_due(h);
  for (Page* pg = h->lane_page[lane];; pg = h->lane_page[lane]) {
    if (pg == &g_empty_page && heap_reclaim(h)) continue;   // an exited thread's pages first
    if (pg == &g_empty_page) {
      pg = page_new(h, lane);
      if (!pg) return nullptr;
      list_push_front(h, pg);
    }
    KM_CHECK_PAGE(pg);
    if (page_has(pg, kPageSecure)) {
      if (secure_has_cell(pg)) return secure_pop(pg, zero, size);
    } else if (page_refill(pg)) {
      return page_pop(pg, zero);
    }
    list_remove(h, pg);   // exhausted: off the list until a cell comes back
    page_set(pg, kPageFull);
    pack_front(h, lane);
  }
}

Heap* heap_new() {
  void* mem = meta_alloc(sizeof(Heap));
  if (!mem) return nullptr;
  Heap* h = new (mem) Heap(&g_empty_page);
  g_heap_count.fetch_add(1, std::memory_order_relaxed);
  Heap* head = g_all_heaps.load(std::memory_order_relaxed);
  do h->all_next = head;
  while (!g_all_heaps.compare_exchange_weak(head, h, std::memory_order_release, std::memory_order_relaxed));
  return h;
}

void thread_exit(void* arg);

// The calling thread's first slow path: adopt a heap from the pool, or make one.
Heap* heap_acquire() {
  runtime_init();
  Heap* h;
  {
    LockGuard g(g_pool_lock);
    h = g_pool;
    if (h) {
      g_pool = h->pool_next;
      h->pool_next = nullptr;
      h->abandoned.store(false, std::memory_order_relaxed);
    }
  }
  if (!h) h = heap_new();
  if (!h) return nullptr;
  tl_heap = h;
  g_live_heaps.fetch_add(1, std::memory_order_relaxed);
  if (!g_key_ready.load(std::memory_order_acquire)) {
    static SpinLock key_lock;
    LockGuard g(key_lock);
    if (!g_key_ready.load(std::memory_order_relaxed)) {
      os::thread_key_create(&g_thread_key, thread_exit);
      g_key_ready.store(true, std::memory_order_release);
    }
  }
  os::thread_key_set(g_thread_key, h);
  return h;
}

// Key destructor: the thread is exiting. Give back what can be given, and pool the heap.
void thread_exit(void* arg) {
  auto* h = static_cast<Heap*>(arg);
  heap_collect(h, true);
  tl_heap = &g_dead_heap;
  g_live_heaps.fetch_sub(1, std::memory_order_relaxed);
  {
    LockGuard g(g_pool_lock);
    h->pool_next = g_pool;
    g_pool = h;
    h->abandoned.store(true, std::memory_order_seq_cst);
    if (h->segments) g_pool_has_memory.store(true, std::memory_order_relaxed);
  }
  // Frees that came in before it was marked abandoned woke nobody: the purger drains them.
  if (h->remote.load(std::memory_order_seq_cst)) purge_schedule();
}

}  // namespace

// ============================================================================ slow paths

Heap* heap_for_thread(SpinLock** held) {
  *held = nullptr;
  Heap* h = tl_heap;
  if (KM_UNLIKELY(h == &g_empty_heap)) return heap_acquire();
  if (KM_UNLIKELY(h == &g_dead_heap)) {   // allocating after thread exit (late destructors)
    g_orphan_lock.lock();
    if (!g_orphan) g_orphan = heap_new();
    if (!g_orphan) {
      g_orphan_lock.unlock();
      return nullptr;
    }
    *held = &g_orphan_lock;
    return g_orphan;
  }
  return h;
}

namespace {
void* alloc_slow_unchecked(size_t size, unsigned lane, bool zero) {
  if (KM_UNLIKELY(secure_enabled())) {
    lane = secure_lane(size, lane);
    if (lane == 0) return span_alloc(size, zero);
  }
  SpinLock* held;
  Heap* h = heap_for_thread(&held);
  if (!h) return nullptr;
  void* p = alloc_from(h, size, lane, zero);
  if (held) held->unlock();
  else stats_peak_update();
  return p;
}
}  // namespace

void* heap_alloc_slow(size_t size, unsigned lane, bool zero) {
  void* p = alloc_slow_unchecked(size, lane, zero);
  if (KM_UNLIKELY(!p)) errno = ENOMEM;
  return p;
}

void page_free_slow(Heap* h, Page* page) { page_emptied(h, page); }

void remote_push(Heap* owner, Block* b, uint32_t bytes) {
  Heap* me = tl_heap;
  if (me != &g_empty_heap && me != &g_dead_heap)
    __atomic_store_n(&me->remote_freed, me->remote_freed + bytes, __ATOMIC_RELAXED);
  else
    g_heapless_remote.fetch_add(bytes, std::memory_order_relaxed);
  Block* head = owner->remote.load(std::memory_order_relaxed);
  do b->next = head;
  while (!owner->remote.compare_exchange_weak(head, b, std::memory_order_release,
                                              std::memory_order_relaxed));
  // The first cell on an exited thread's stack: nobody would collect it, so the purger (if the
  // program has one) drains it and thins the pages it empties within the purge delay. This path
  // never starts the purger: its thread's TLS comes from malloc, amid the program's own counts.
  if (head == nullptr && owner->abandoned.load(std::memory_order_seq_cst)) purge_schedule();
}

void free_slow(void* p, Page* page) {
  auto* b = static_cast<Block*>(p);
  if (page->cell_size == 0) fatal_pointer("free", "invalid pointer", p);
  if (!is_carved_cell(page, p)) fatal_pointer("free", "invalid pointer (not the start of a block)", p);
  if (b->tag == free_tag(page, p)) fatal_pointer("free", "double free", p);
  // The canary of a live cell (a freed secure cell is zeroed, so this comes after the double-free test).
  if (has_canary(page)) secure_check_free(page, b);
  Heap* owner = page_heap(page);
  if (owner == tl_heap) return owner_push(owner, page, b);
  // Another thread's cell: tag it free now (so a second free is caught), then hand it over.
  if (has_canary(page)) secure_scrub(page, b);
  b->tag = free_tag(page, p);
  remote_push(owner, b, page->cell_size);
}

void free_other(Block* b, Page* page, uintptr_t tag) {
  if (page_has(page, kPageSecure)) return free_slow(b, page);   // canary check, scrub, encoding
  Heap* owner = page_heap(page);
  if (owner == tl_heap) return owner_push(owner, page, b);     // our full page
  b->tag = tag;   // free from now on, so a second free is caught
  remote_push(owner, b, page->cell_size);
}

void free_not_segment(void* p, const char* call) {
  if (p == nullptr) return;
  if (map_value(p) >= kMapHuge) return huge_free(p, call);
  fatal_pointer(call, "invalid pointer", p);
}

void heap_collect(Heap* h, bool retire_current) {
  collect_remote(h);
  retiring_sweep(h, true);
  // trim thins at once; thread exit and the purger's drain too, unless the delay is -1 (never)
  if (!retire_current || option(Opt::purge_delay_ms) >= 0) heap_thin(h);
  for (unsigned lane = 1; lane < kLaneCount; ++lane) {
    Page* pg = h->lane_page[lane];
    while (pg != &g_empty_page && pg != nullptr) {
      Page* next = pg->next;
      if (pg->used == 0 && (retire_current || next != nullptr || pg->prev != nullptr))
        page_retire(h, pg);
      pg = next;
    }
  }
  for (Segment* s = h->segments; s;) {
    Segment* next = s->heap_next;
    if (s->free_slots == kAllSlotsFree) segment_release_if_spare(h, s, retire_current ? 0 : 1);
    s = next;
  }
}

void heaps_drain_abandoned() {
  LockGuard g(g_pool_lock);
  for (Heap* h = g_pool; h; h = h->pool_next)
    if (h->remote.load(std::memory_order_relaxed)) heap_collect(h, true);
}

// ============================================================================ fork

void heaps_fork_prepare() {
  g_pool_lock.lock();
  g_orphan_lock.lock();
}

void heaps_fork_parent() {
  g_orphan_lock.unlock();
  g_pool_lock.unlock();
}

void heaps_fork_child(bool whole) {
  g_orphan_lock.reset_in_child();
  g_pool_lock.reset_in_child();
  if (!whole) {   // the pool or the orphan heap may be mid-update: abandon them
    g_pool = nullptr;
    g_orphan = nullptr;
  }
  // The forking thread's heap may be halfway through a malloc or free (fork from a signal handler
  // that interrupted one), so the child sets it aside and starts a fresh heap on its next malloc.
  // Like the heaps of threads that do not exist in the child, it keeps its memory (shared
  // copy-on-write with the parent; the child usually execs), and cells of it that the child frees go
  // to its remote queue, harmlessly.
  if (tl_heap != &g_dead_heap) tl_heap = &g_empty_heap;
  g_live_heaps.store(0, std::memory_order_relaxed);   // none of the parent's heaps is in use here
}

}  // namespace km

namespace km {
size_t cell_usable_size(const void* p) {
  if (!cell_is_live(p)) return 0;
  Page* pg = page_of(segment_of(p), p);
  return has_canary(pg) ? secure_usable_size(pg, p) : pg->cell_size;
}
}  // namespace km
