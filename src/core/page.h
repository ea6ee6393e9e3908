// page.h — a lane page: cells of one size in a run of slots, their free lists and the free tag.
//
// The page is the unit malloc pops from and free pushes to; its set-up, carving and refill live in
// page.cpp, its place in a heap (lane lists, retiring) in heap.cpp, its slots in segment.h.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "core/config.h"

namespace km {

struct Heap;
// A free cell: the link of its page's free list, and a tag that marks it as free. A cell handed out
// has tag 0 (cleared by malloc); a free cell has its page's free tag (free_tag), so freeing it again is
// caught in O(1) (a double free), and user data cannot match by accident.
struct Block {
  Block* next;
  uintptr_t tag;
};

// A lane page: cells of one size in one run of slots. A span is a Page of one cell (span = 1, lane 0,
// capacity = carved = 1, cell_size = its usable bytes), so free's fast path serves it unchanged.
// Invariants (counts without kUsedCurrent: page_live): used <= carved <= capacity; every carved cell
// is exactly one of: handed out (counted in used), on `free`, on `local_free`, on its heap's remote
// queue or in the purger's hands or sink note (sink.h; each still counted in used), or dropped: it
// overlaps an OS page given back by thinning (bit set in `thinned`), and is on no list until
// page_thicken puts it back.
// free + local_free + used + dropped == carved.
// Cells [carved, capacity) were never touched. Owner-thread fields are written only by the thread that
// owns the heap; nothing here is written by other threads (remote frees go to Heap::remote).
struct Page {
  // Read by every thread that frees a cell of the page (written at set-up, `carved` at carving): a
  // cache line of its own, so that remote frees do not share the line the owner writes on every malloc.
  char* start;            // first cell (the page's first slot)
  uintptr_t owner;        // its heap's owner id (Heap::owner_id) | kPageFull | kPageSecure: free()
                          // tests "a plain page of mine" in one compare against the thread pointer
  Heap* heap;             // the heap that owns it (remote frees go to its stack)
  uint64_t mul;           // floor(2^64 / cell_size) + 1, 0 for a free slot (is_carved_cell)
  uint64_t carved_lim;    // carved * (mul * cell_size mod 2^64): what free compares (is_carved_cell)
  uint32_t cell_size;     // 0 for a free slot
  uint32_t capacity;      // cells that fit
  uint32_t carved;        // owner: cells carved from the page so far (page_add_carved)
  uint8_t lane;           // 0 for a free slot
  uint8_t slots;          // slots spanned
  uint8_t span;           // a span (one large block), not a lane page
  uint8_t zero_init;      // the slots were fresh or purged when the page was set up
  uint8_t inherited;      // checks build: set in a fork child, whose counts may be one cell short
  // The owner's hot line: malloc pops `free` and counts `used`; free pushes `local_free`.
  alignas(64) Block* free;   // owner: cells to hand out, popped by malloc
  Block* local_free;      // owner: cells freed by the owner since the last refill
  uint32_t used;          // owner: cells handed out (including those freed remotely, not collected),
                          // plus kUsedCurrent while the page is its lane's current page
  uint8_t free_is_fresh;  // `free` holds only never-used cells of a zero_init page (calloc skips memset)
  uint8_t retiring;       // owner: listed in its heap's `retiring` (empty, kept for reuse a while)
  Page* next;             // owner: lane list
  Page* prev;
  // owner: thinning (thin.h). Bit i: OS page i of the page was given back while its cells were free.
  uint32_t dropped;       // cells off every list because they overlap such an OS page
  uint32_t used_at_thin;  // `used` when last thinned: thin again only after a quarter more went
  uint32_t visited;       // owner: its heap's thin_pass when malloc last refilled from it (thinning
                          // skips a page the lane reached since the last pass: its cells go soon)
  uint64_t thinned[4];    // 256 OS pages: the largest lane page (16 slots)
  // The purger's sink note (sink.h): OS pages it gave back while every cell on them was a remote free
  // of an idle owner in its hands. sunk_state (kSunk*) hands it over: the purger writes the note
  // holding kSunkWriting, and lists the page on its heap's RemoteStack::sunk the first time; whoever
  // collects the heap reads it holding kSunkTaking (the cells become dropped, the OS pages thinned).
  uint8_t sunk_state;     // atomic
  uint32_t sunk_cells;    // cells of the note: off every list, still counted in `used`
  Page* sunk_next;        // on RemoteStack::sunk
  uint64_t key;           // secure mode's free tags and encodings: g_page_secret ^ start (page_geometry)
  // (the note's OS pages are in its segment's header, Segment::sunk_bits: a Page stays 3 lines)
};
// Page::sunk_state: no note; a note is listed; the purger writes it; its heap's collector reads it.
// (A Page is 3 cache lines, the second the owner's hot one; static_assert in segment.h.)
constexpr uint8_t kSunkNone = 0, kSunkListed = 1, kSunkWriting = 2, kSunkTaking = 3;

// A lane's current page carries this in `used` (set_lane_page puts it on and takes it off), so its
// count never reaches 0 in free's fast path: "the page emptied, but it is the one malloc pops from,
// keep it" costs no test there (a loop that allocates and frees one object frees into it every time).
// page_live is the count without it; capacities are far below it.
constexpr uint32_t kUsedCurrent = 1u << 31;
KM_INLINE uint32_t page_live(const Page* pg) { return pg->used & ~kUsedCurrent; }

// Flag bits in Page::owner (thread pointers and heaps are 64-byte aligned: the low bits are free).
constexpr uintptr_t kPageFull = 1;     // off its lane list: it had no free cell at the last look
constexpr uintptr_t kPageSecure = 2;   // KMALLOC_SECURE: cells go through the checked slow paths only
constexpr uintptr_t kPageFlags = kPageFull | kPageSecure;
// `owner` and `carved` are written by the owner only but read by any thread that frees a cell of the
// page: relaxed atomic accesses (plain moves on x86) keep that well-defined (and ThreadSanitizer quiet).
KM_INLINE uintptr_t page_owner(const Page* pg) { return __atomic_load_n(&pg->owner, __ATOMIC_RELAXED); }
// page_owner(pg) == owner, as free's fast path asks it (config.h: KM_ASM_COMPARE).
KM_INLINE bool page_owner_is(const Page* pg, uintptr_t owner) {
#ifdef KM_ASM_COMPARE
  bool eq;
  asm("cmpq %[o], %[m]" : "=@cce"(eq) : [m] "m"(pg->owner), [o] "r"(owner));
  return eq;
#else
  return page_owner(pg) == owner;
#endif
}
KM_INLINE bool page_has(const Page* pg, uintptr_t flag) { return (page_owner(pg) & flag) != 0; }
KM_INLINE Heap* page_heap(const Page* pg) { return __atomic_load_n(&pg->heap, __ATOMIC_RELAXED); }
// The page changes heap (set-up, adoption): its heap, and its owner word with the flags kept.
KM_INLINE void page_set_heap(Page* pg, Heap* h, uintptr_t owner_id) {
  __atomic_store_n(&pg->heap, h, __ATOMIC_RELAXED);
  __atomic_store_n(&pg->owner, owner_id | (pg->owner & kPageFlags), __ATOMIC_RELAXED);
}
KM_INLINE void page_set(Page* pg, uintptr_t flag) {
  __atomic_store_n(&pg->owner, pg->owner | flag, __ATOMIC_RELAXED);
}
KM_INLINE void page_clear(Page* pg, uintptr_t flag) {
  __atomic_store_n(&pg->owner, pg->owner & ~flag, __ATOMIC_RELAXED);
}
// x < pg->carved_lim, as free's fast path asks it (config.h: KM_ASM_COMPARE).
KM_INLINE bool page_carved_above(const Page* pg, uint64_t x) {
#ifdef KM_ASM_COMPARE
  bool below;
  asm("cmpq %[m], %[x]" : "=@ccb"(below) : [m] "m"(pg->carved_lim), [x] "r"(x));
  return below;
#else
  return x < __atomic_load_n(&pg->carved_lim, __ATOMIC_RELAXED);
#endif
}
// n more cells carved: the count, and the limit free compares (is_carved_cell).
KM_INLINE void page_add_carved(Page* pg, uint32_t n) {
  pg->carved += n;
  __atomic_store_n(&pg->carved_lim, pg->carved * (pg->mul * pg->cell_size), __ATOMIC_RELAXED);
}

// The free tag of the cells of a plain page is the address of its Page: free's fast path has it in a
// register, no program holds it (it is kmalloc's metadata), and no other page has it at the same time.
KM_INLINE uintptr_t plain_tag(const Page* pg) { return reinterpret_cast<uintptr_t>(pg); }
// Secure pages tag with the page key ^ the cell instead, which a use-after-free read cannot turn into
// an address (secure.cpp). Their frees always take the slow path, where this is what is compared.
extern uint64_t g_page_secret;
KM_INLINE uintptr_t free_tag(const Page* pg, const void* cell) {
  if (KM_UNLIKELY(page_has(pg, kPageSecure))) return pg->key ^ reinterpret_cast<uintptr_t>(cell);
  return plain_tag(pg);
}

// Set pg's cell geometry (start already set): cell_size, the divisibility constant, the secure key.
void page_geometry(Page* pg, size_t cell);

// Is p the start of a carved cell of pg? With d = cell_size, m = floor(2^64 / d) + 1 and e = m * d -
// 2^64 (0 < e <= d), an offset o = q * d + r from start gives o * m mod 2^64 = q * e when r = 0, and
// at least m (about 2^64 / d, far above any carved * e) when r != 0 (the divisibility test of Lemire,
// Kaser and Kurz): one multiply and one compare against carved * e test "a cell start" and "carved" at
// once. Exact for every p within 2^23 bytes of start either way (p's own segment, which is where free
// looks), since then o * m does not wrap: false for an interior pointer, a pointer below start, a
// never-carved cell, or any pointer of a free slot (m 0, limit 0). A pointer at or above 2^47 (which
// free's masked map lookup can send to a segment, segment.h) may pass by chance; the read of its tag
// then faults before anything is written (no such address is mapped under 4-level paging).
KM_INLINE bool is_carved_cell(const Page* pg, const void* p) {
  uintptr_t off = reinterpret_cast<uintptr_t>(p) - reinterpret_cast<uintptr_t>(pg->start);
  return page_carved_above(pg, off * pg->mul);
}
// The index of cell `cell` of pg (a cell start): with o = q * d, o * m = q * 2^64 + q * e, and q * e
// < 2^64, so the high half of the product is q. A multiply where a division takes tens of cycles.
KM_INLINE uint32_t cell_index(const Page* pg, const void* cell) {
  uintptr_t off = reinterpret_cast<uintptr_t>(cell) - reinterpret_cast<uintptr_t>(pg->start);
  return uint32_t((static_cast<unsigned __int128>(off) * pg->mul) >> 64);
}


// Pop the first free cell of `page`; nullptr when it has none (the empty page never has one).
KM_INLINE Block* page_take(Page* page) {
  Block* b = page->free;
  if (KM_LIKELY(b != nullptr)) {
    page->free = b->next;
    b->tag = 0;
    page->used++;
  }
  return b;
}

// `free` ran out: the cells the owner freed since become the cells to hand out (refill's common case).
KM_INLINE void page_swap_local(Page* pg) {
  pg->free = pg->local_free;
  pg->local_free = nullptr;
  pg->free_is_fresh = 0;
}

// calloc's half of a pop: a cell from a fresh batch of a zero page is still zero but for its link.
KM_INLINE void zero_popped(Page* page, Block* b) {
  if (page->free_is_fresh) b->next = nullptr;
  else std::memset(b, 0, page->cell_size);
}

// ---- page life (page.cpp): what happens to the cells, not to the lists the page is on
// Set up the page of `cell`-byte cells at `start` (`bytes` long, `slots` slots) for heap `heap`, whose
// owner id is `owner` (Heap::owner_id). zero: its memory reads as zeros. Carves nothing yet. false: secure mode could not set its guard up
// (the page is left cleared).
bool page_setup(Page* pg, char* start, size_t bytes, unsigned slots, unsigned lane, size_t cell,
                Heap* heap, uintptr_t owner, bool zero);
// The page (of `bytes` bytes) holds no cell in use any more: clear it (its slots are the caller's).
void page_teardown(Page* pg, size_t bytes);
// The page has never-used cells to carve, and no dropped ones that refill puts back first.
KM_INLINE bool page_can_carve(const Page* pg) { return pg->carved < pg->capacity && !pg->dropped; }
// Make `free` non-empty if the page has any cell to give. false: the page is full.
bool page_refill(Page* pg);
// Pop the first cell of `free` (non-empty); zero: it must read as zeros.
void* page_pop(Page* pg, bool zero);
// Put a cell that passed the checks back on the page (plain or secure); does not count `used`.
void page_push(Page* pg, Block* b);
}  // namespace km
