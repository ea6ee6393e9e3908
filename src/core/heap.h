// heap.h — the per-thread heap: one lane list per size class, and the fast paths.
//
// Each thread allocates from its own Heap without locks. A thread's tl_heap starts out pointing at
// g_empty_heap, whose lanes all point at an empty page, so the first malloc simply misses into the slow
// path, which sets the thread up. When a thread exits its heap goes to a pool with everything it still
// owns; the next new thread adopts it whole, and a running thread that needs a page adopts its pages
// (heap_reclaim): threads that come and go leave no growth behind, and none of it is stranded.
//
// Invariants: lane_page[l] is the first page of lane l's list, or &g_empty_page when the list is
// empty; lane_last[l] is its last page, or nullptr. Every page on a lane list has kPageFull clear.
// A list is first in, first out: a new page goes in front (current), a page that gets cells back or
// is adopted goes to the back, so each page waits its turn gathering frees (long runs of pops).
// Only the owner thread touches anything but `remote` (remote.h), which other threads push freed
// cells onto, and `pool_next` (pool.h).
#pragma once
#include <atomic>
#include <cstring>

#include "core/config.h"
#include "core/diag.h"
#include "core/remote.h"
#include "core/secure.h"
#include "core/segment.h"
#include "core/stats.h"
#include "core/size_class.h"

namespace km {

// Requests up to kDirectMax bytes index `direct` by (size + 15) / 16: one load gives the page, with
// no size -> lane table on malloc's path (direct[i] == lane_page[lane_of(i * 16)], or that lane's
// kept foreign cells while it has some: set_lane_page, foreign.h).
constexpr size_t kDirectMax = 1024;
constexpr unsigned kDirectCount = kDirectMax / 16 + 1;
// Lanes 1 .. kForeignLanes - 1 are the direct lanes, whose kept foreign cells malloc pops (foreign.h).
constexpr unsigned kForeignLanes = kLanes.small_lane[kDirectCount - 1] + 1u;

struct Heap {
  Page* direct[kDirectCount] = {};    // owner: the current page for small requests (hot: malloc)
  Page* lane_page[kLaneCount] = {};   // owner: current page of each lane
  Page* lane_last[kLaneCount] = {};   // owner: last page of each lane's list (nullptr when empty)
  RemoteStack remote;                 // cells other threads freed to this heap (remote.h)
  Segment* segments = nullptr;        // owner: the segments this heap owns
  Heap* pool_next = nullptr;          // in the pool of heaps whose thread has exited (pool.h)
  Heap* all_next = nullptr;           // every heap ever made (never removed): stats sum over them
  // What its pages carry in Page::owner: the thread pointer of the thread running it (its own heap),
  // or the heap's address while no thread does (pooled, the orphan, set aside in a fork child), which
  // no thread pointer equals. Its thread's exit writes the address into every page before the heap is
  // pooled: the thread pointer of an exited thread comes back with the next thread (glibc reuses its
  // stack), and that thread must not find the old pages its own (heap_set_owner).
  uintptr_t owner_id = 0;
  bool orphan = false;                // the orphan heap (thread.cpp): never adopts pooled heaps
  bool keeps_foreign = false;         // a thread's own heap (not the empty, dead or orphan heap):
                                      // it may keep other heaps' cells (foreign.h); one test there
  bool stranded = false;              // set aside in a fork child (maybe torn): never used again
  // owner: slow paths under way that may change this heap's lists (HeapBusy). A fork child reads it
  // to tell a heap that is whole from one its thread was updating when the process forked.
  uint32_t busy = 0;
  // owner-written, read by stats: bytes this heap's thread freed into other heaps' remote stacks, and
  // bytes it collected from its own. Their difference, summed over all heaps, is what was freed
  // across threads and not yet collected: "in use" leaves it out, without an atomic per free.
  size_t remote_freed = 0;
  size_t remote_collected = 0;
  // Odd while a collection is under way (collect_remote_slice): remote_collected and the pages'
  // counts change together then, a cell at a time, so stats retry a snapshot that overlapped one.
  // A fork child makes it even (threads_fork_child): the collecting thread is not there.
  uint32_t collect_seq = 0;
  // owner: what this heap's thread freed into other heaps, waiting to go over in batches (remote.h).
  RemoteBatch outgoing;
  // owner: cells taken from `remote` and not yet put back on their pages (collect_remote_slice).
  Block* remote_backlog = nullptr;
  // owner: pages emptied recently, still on their lane lists so that the next burst of allocations
  // reuses them as they are (no set-up, no carving); retired when still empty kRetireAfter slow paths
  // later, or the oldest first when more than kRetiringSlots slots wait. Bounds: enough for the
  // pages of a burst in a few lanes, small enough that a scan of them is a few cache lines.
  static constexpr unsigned kRetiringMax = 16, kRetiringSlots = 32, kRetireAfter = 32;
  Page* retiring[kRetiringMax] = {};
  uint32_t retiring_tick[kRetiringMax] = {};
  unsigned retiring_count = 0;
  unsigned retiring_slots = 0;
  uint32_t tick = 0;                  // owner: slow paths taken (not counting quick refills); the
                                      // purger reads it to tell an idle owner (sink.h)
  uint32_t quick_refills = 0;         // owner: misses served from the page's own local frees (entry.cpp)
  int64_t thin_ms = 0;                // owner: when its sparse pages were last thinned
  uint32_t thin_pass = 1;             // owner: thinning passes so far, plus one (Page::visited)
  // owner: cells of other heaps' pages this thread freed, kept for its next mallocs (foreign.h).
  Page foreign[kForeignLanes] = {};
  HeapStats stats;                    // owner-written, summed by stats over every heap (stats.h)
  // The purger only (sink.cpp, under the sink lock): its watch over the remote stack while the owner
  // looks idle.
  uint32_t sink_tick = 0;             // the owner's tick at the last look
  int64_t sink_since = 0;             // the look that first found frees waiting on an idle owner
  int64_t sink_at = 0;                // the last sink of this heap
  unsigned sink_rounds = 0;           // sinks since the owner last ran (each waits twice as long)

  // A heap whose lanes all point at `empty` (an empty page): the state before set-up.
  constexpr explicit Heap(Page* empty) {
    for (auto& p : lane_page) p = empty;
    for (auto& p : direct) p = empty;
  }
};

extern Page g_empty_page;
extern Heap g_empty_heap;
extern Heap g_dead_heap;
extern constinit thread_local Heap* tl_heap;   // constinit: no TLS wrapper call

// Marks h busy for the scope of a slow path that changes its lists, pages or segments. The fast paths
// never do: a thread interrupted in one leaves at worst a cell on no list (fork.cpp).
struct HeapBusy {
  explicit HeapBusy(Heap* h) : HeapBusy(h, h->orphan) {}
  HeapBusy(Heap* h, bool orphan) : h_(orphan ? nullptr : h) {   // the orphan's is never read
    if (h_) ++h_->busy;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);   // busy before any change a handler could see
  }
  ~HeapBusy() {
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    if (h_) --h_->busy;
  }
  HeapBusy(const HeapBusy&) = delete;
  HeapBusy& operator=(const HeapBusy&) = delete;
  Heap* h_;
};

// ---- slow paths behind the fast paths below (entry.cpp); each may return nullptr (the caller sets
// errno / throws). `size` is the request (<= lane_size(lane)); zero: the cell must read as zeros.
// Sets errno = ENOMEM when it returns nullptr.
KM_NOINLINE void* heap_alloc_slow(size_t size, unsigned lane, bool zero);
// A cell that failed the fast free checks (invalid, interior, double) or belongs to another heap.
KM_NOINLINE void free_slow(void* p, Page* page);
// A cell that passed the fast checks, of a page that is not a plain page of the calling thread: another
// heap's, full, or secure (whose keyed tags only the slow path compares).
KM_NOINLINE void free_other(Block* b, Page* page);
// Free of a pointer outside every segment: NULL, a large block, or not ours (fatal).
KM_NOINLINE void free_not_segment(void* p, const char* call);
// A local free emptied a page that is not its lane's current page: retire it (soon, see Heap::retiring).
KM_NOINLINE void page_free_slow(Page* page);

// ---- a heap's pages (heap.cpp), owner thread only unless said otherwise
// A new heap, registered for stats (orphan: the orphan heap). nullptr when metadata runs out.
Heap* heap_new(bool orphan = false);
// A cell of `lane` from h: current page, next pages, an exited thread's pages, a new page.
void* alloc_from(Heap* h, size_t size, unsigned lane, bool zero);
// A cell of h's page pg that passed the checks goes back to it (tagged free here).
void owner_free(Heap* h, Page* pg, Block* b);
// The page's last cell came back (span or lane page).
void page_emptied(Heap* h, Page* pg);
// `n` consecutive free slots from one of h's segments (a new one if none has room); returns the
// first slot and its segment, or 0 when the OS refuses. *zero: the slots read as zeros.
unsigned heap_take_slots(Heap* h, unsigned n, Segment** seg, bool* zero);
// Give slots back to their segment (dirty, purged after the delay); an emptied segment is kept.
void heap_give_slots(Heap* h, Segment* s, unsigned first, unsigned n);
// Push every cell other threads freed to h onto its page (the backlog, then the stack once, then the
// purger's parked cells), and take the purger's sink notes (sink.h).
void collect_remote(Heap* h);
// The same, at most `limit` cells: the rest waits in h->remote_backlog for the next slice (the sink
// notes are all taken).
void collect_remote_slice(Heap* h, size_t limit);
// Cells other threads freed to h wait, on its stack, in its backlog or parked by the purger, or the
// purger left sink notes (sink.h). For whoever runs h (its owner, or the holder of a pooled heap).
KM_INLINE bool remote_waiting(const Heap* h) { return h->remote_backlog || remote_anything(&h->remote); }
// Before a remote link is followed (by the collector, or by the purger's sink): in secure mode, a
// link written after free (a use-after-free) is reported, not followed.
KM_INLINE void check_remote_link(const Block* b) {
  if (KM_UNLIKELY(secure_enabled()) && !cell_is_free(b))
    fatal_pointer("free", "corrupted remote free list at", b);
}
// Give back the free OS pages of h's sparse pages (thin.h) but the current ones and, unless `all`,
// those malloc refilled from since the last pass (the periodic pass; trim and exit thin all).
void heap_thin(Heap* h, bool all);
// Send h's outgoing batch, collect its remote frees, retire its empty pages (malloc_trim, thread
// exit: retire_current).
void heap_collect(Heap* h, bool retire_current);
// The calling thread freed `bytes` into another heap's remote stack (counted for stats).
void count_remote_free(uint32_t bytes);
// A cell of `owner` (not the calling thread's heap), tagged free, of a page whose cells are `bytes`:
// counted, then into the calling thread's outgoing batch (straight onto the stack without a heap).
void remote_hand_over(Heap* owner, Block* b, uint32_t bytes);
// The calling thread's owner id (Heap::owner_id): its thread pointer, unique among live threads (the
// TLS ABI keeps it in %fs:0 on x86-64), one load with no TLS offset to fetch first.
KM_INLINE uintptr_t thread_owner_id() { return reinterpret_cast<uintptr_t>(__builtin_thread_pointer()); }
// h's pages carry `id` from now on (every page of every segment h owns; its owner only, or whoever
// holds h while no thread runs it). O(pages): at thread start, exit and in a fork child.
void heap_set_owner(Heap* h, uintptr_t id);
// Number of heaps created so far (any thread).
size_t heap_count();
// The newest heap of the registry of every heap ever made; the rest through Heap::all_next.
Heap* heaps_all();
// A fork child keeps the forking thread's heap h (not busy): each lane's current page goes off its
// list, as if full, so that no malloc in the child pops a cell whose pop the fork interrupted.
void heap_fork_child(Heap* h);
// A heap a fork child goes on using (kept, or pooled for reuse): its outgoing batch is sent. Its thread
// may have been inside a fast path when the process forked: a pop or push cut short leaves at most one
// page one cell short of its count (a leaked cell, never a cell handed out twice); the checks build
// marks its pages so that the count check allows that one cell.
void heap_fork_inherit(Heap* h);
// Bytes freed by other threads and not yet collected by their owners (stats: not "in use"). Any thread.
size_t heaps_remote_pending();
// The sum of every heap's collect_seq, with bit 63 set if a collection is under way.
uint64_t heaps_collect_seq();

// Point the direct entries of a direct lane (sizes (lane_size(lane - 1), lane_size(lane)] in steps
// of 16) at pg: the lane's current page, or its kept foreign cells (foreign.h).
KM_INLINE void set_direct(Heap* h, unsigned lane, Page* pg) {
  unsigned lo = lane > 1 ? unsigned(lane_size(lane - 1) / 16) + 1 : 0;
  for (unsigned i = lo, hi = unsigned(lane_size(lane) / 16); i <= hi; ++i) h->direct[i] = pg;
}

// Make pg the current page of `lane` (lane_page's only writer), kUsedCurrent moving with it (page.h).
// The direct entries follow, unless they point at kept foreign cells, which go first.
KM_INLINE void set_lane_page(Heap* h, unsigned lane, Page* pg) {
  Page* old = h->lane_page[lane];
  if (old != &g_empty_page) old->used -= kUsedCurrent;   // (shared by every heap: never counted)
  if (pg != &g_empty_page) pg->used += kUsedCurrent;
  h->lane_page[lane] = pg;
  if (lane < kForeignLanes && !h->foreign[lane].free) set_direct(h, lane, pg);
}

// ---- fast paths ----------------------------------------------------------------------------

// Pop a cell from the calling thread's current page of `lane`; nullptr when that page has none.
KM_INLINE Block* lane_pop(unsigned lane, Page** page_out) {
  Page* page = tl_heap->lane_page[lane];
  *page_out = page;
  return page_take(page);
}

// A cell for a request of at most kDirectMax bytes: a pop from the direct page, or the slow path.
KM_INLINE void* small_alloc(size_t size) {
  if (Block* b = page_take(tl_heap->direct[(size + 15) >> 4])) return b;
  return heap_alloc_slow(size, kLanes.small_lane[(size + 15) >> 4], false);
}

// A cell of `lane` for a request of `size` bytes: a pop, or the slow path.
KM_INLINE void* lane_alloc(size_t size, unsigned lane) {
  Page* page;
  if (Block* b = lane_pop(lane, &page)) return b;
  return heap_alloc_slow(size, lane, false);
}

// Free a pointer. Cells of the calling thread's own pages are pushed back right here; anything else
// (NULL, large blocks, other threads' cells, invalid pointers) goes to a slow path.
KM_INLINE void cell_free(void* p) {
  uintptr_t i = map_index_masked(p);
  if (KM_UNLIKELY(!map_is_segment(i))) return free_not_segment(p, "free");
  Segment* s = map_segment(i);
  Page* page = page_of(s, p);
  auto* b = static_cast<Block*>(p);
  uintptr_t tag = plain_tag(page);
  // Not a cell start, never handed out, or already free: the slow path says which, and stops.
  if (KM_UNLIKELY(!is_carved_cell(page, p) || b->tag == tag))
    return free_slow(p, page);
  // Another thread's page, or a flagged (full or secure) page of ours.
  if (KM_UNLIKELY(!page_owner_is(page, thread_owner_id()))) return free_other(b, page);
  b->next = page->local_free;
  b->tag = tag;
  page->local_free = b;
  // The page's last cell came back: retire it (soon). Never the current page, whose count carries
  // kUsedCurrent: a loop that allocates and frees one object must not set up a page every time.
  if (KM_UNLIKELY(--page->used == 0)) page_free_slow(page);
}

// Usable size of live cell p of page pg.
size_t cell_usable_size(const Page* pg, const void* p);

}  // namespace km
