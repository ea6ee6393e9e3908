// segment.h — segments, the slots inside them, and the segment map that tells ours from theirs.
//
// A Segment is a 4 MiB mapping aligned to 4 MiB, owned by one thread heap for its whole life. Slot 0
// holds this header; slots 1..63 (64 KiB each) are free, or belong to one lane page spanning 1..16
// consecutive slots, or to one span (a large block: a run of 1..63 slots, span.h). Any cell address
// masked to 4 MiB gives its Segment, and slot_pages[] gives its Page: free() finds a cell's metadata
// with two loads and no search. Huge blocks (huge.h) have a mapping of their own, found the same way.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "core/config.h"
#include "core/lock.h"
#include "core/page.h"

namespace km {

// Segment header, at the start of slot 0.
// Invariants: the segment belongs to one heap at a time (its pages' `owner`): it moves only whole,
// when a running heap adopts the heap of an exited thread (heap_reclaim), or empty, through the
// spare pool. free_slots/dirty_slots/dirty_ms are guarded by `lock`
// (the owner changes them when taking or giving back a run of slots; the purger reads and clears
// dirty bits). slot_page/pages are owner-only.
struct Segment {
  Segment* next;                   // global list of segments (guarded by g_segments_lock)
  Segment* prev;
  Segment* heap_next;              // owner: the heap's segments
  SpinLock lock;
  uint64_t free_slots;             // bit i: slot i is free
  uint64_t dirty_slots;            // bit i: free slot i holds memory not yet purged
  int64_t dirty_ms[kSlotsPerSegment];   // when each dirty slot was freed
  uint8_t slot_page[kSlotsPerSegment];  // slot -> index of the first slot of its page
  Page* slot_pages[kSlotsPerSegment];   // slot -> its Page (free(): one load)
  // The sink only, under the sink lock (sink.cpp): the cells of this segment it took from an idle
  // heap's remote stack, sorted out by segment; empty between sinks.
  Block* sink_cells;
  uint32_t sink_count;
  Segment* sink_next;
  Page pages[kSlotsPerSegment];    // indexed by first slot
  uint64_t sunk_bits[kSlotsPerSegment][4];   // the OS pages of each page's sink note (page.h)
};
static_assert(sizeof(Segment) <= kSlotSize, "the header fits in slot 0");
static_assert(sizeof(Page) == 192, "a page's metadata is 3 cache lines");
// The OS pages of pg's sink note (pg in segment s).
KM_INLINE uint64_t* sunk_bits(Segment* s, const Page* pg) { return s->sunk_bits[pg - s->pages]; }
constexpr uint64_t kAllSlotsFree = ~uint64_t(0) << kFirstSlot;
// dirty_slots is changed under the segment's lock but peeked at by the purger without it.
KM_INLINE void set_dirty_slots(Segment* s, uint64_t v) { __atomic_store_n(&s->dirty_slots, v, __ATOMIC_RELAXED); }

// Point slots [first, first + n) at the Page of slot `page` (a page or span set up or grown there).
KM_INLINE void segment_map_slots(Segment* s, unsigned page, unsigned first, unsigned n) {
  for (unsigned i = first; i < first + n; ++i) {
    s->slot_page[i] = uint8_t(page);
    s->slot_pages[i] = &s->pages[page];
  }
}

// The first slot of page (or span) pg of segment s.
KM_INLINE unsigned page_first_slot(const Segment* s, const Page* pg) {
  return unsigned((pg->start - reinterpret_cast<const char*>(s)) >> kSlotShift);
}

KM_INLINE Segment* segment_of(const void* p) {
  return reinterpret_cast<Segment*>(reinterpret_cast<uintptr_t>(p) & ~(kSegmentSize - 1));
}
KM_INLINE Page* page_of(Segment* s, const void* p) {
  unsigned slot = unsigned((reinterpret_cast<uintptr_t>(p) >> kSlotShift) & (kSlotsPerSegment - 1));
  return s->slot_pages[slot];
}

// ---- the segment map: one byte per 4 MiB of the 47-bit user address space (32 MiB of .bss address
// space, of which only the pages where segments live are ever touched: a byte test is one instruction
// on free's fast path). The single test of "is this ours". Set before a segment or huge block is
// used, cleared before it is unmapped. Values: 0 not ours; kMapSegment: a Segment header starts here;
// kMapHuge + k: a huge block starts in this 4 MiB, its header k * 4 MiB before (huge.h).
constexpr size_t kSegmentMapEntries = size_t(1) << (47 - kSegmentShift);
extern std::atomic<uint8_t> g_segment_map[kSegmentMapEntries];
constexpr uint8_t kMapSegment = 1, kMapHuge = 2;

KM_INLINE uint8_t map_value(const void* p) {
  uintptr_t i = reinterpret_cast<uintptr_t>(p) >> kSegmentShift;
  if (KM_UNLIKELY(i >= kSegmentMapEntries)) return 0;
  return g_segment_map[i].load(std::memory_order_relaxed);
}
KM_INLINE void map_store(const void* p, uint8_t v) {
  g_segment_map[reinterpret_cast<uintptr_t>(p) >> kSegmentShift].store(v, std::memory_order_release);
}
KM_INLINE bool is_segment(const Segment* s) { return map_value(s) == kMapSegment; }
// free's fast path: p's map entry, the index masked instead of bounds-checked (one instruction
// less). A pointer at or above 2^47 selects a lower entry; if that is a segment, p almost always
// fails is_carved_cell against its pages and reaches the slow path's checks (which use map_value,
// bounds-checked); in the rare case it passes, the read of its tag faults (page.h).
KM_INLINE uintptr_t map_index_masked(const void* p) {
  return (reinterpret_cast<uintptr_t>(p) >> kSegmentShift) & (kSegmentMapEntries - 1);
}
KM_INLINE bool map_is_segment(uintptr_t i) {
#ifdef KM_ASM_COMPARE   // config.h
  bool eq;
  asm("cmpb %[v], %[m]" : "=@cce"(eq) : [m] "m"(g_segment_map[i]), [v] "i"(kMapSegment));
  return eq;
#else
  return g_segment_map[i].load(std::memory_order_relaxed) == kMapSegment;
#endif
}
KM_INLINE Segment* map_segment(uintptr_t i) { return reinterpret_cast<Segment*>(i << kSegmentShift); }

// The page of p if p, in one of our segments (map_value(p) == kMapSegment), is a cell handed out;
// else nullptr. The liveness test of cell_is_live, usable_size and realloc, with the page for them.
KM_INLINE Page* live_cell_page(const void* p) {
  Page* pg = page_of(segment_of(p), p);
  if (!is_carved_cell(pg, p) || static_cast<const Block*>(p)->tag == free_tag(pg, p)) return nullptr;
  return pg;
}
// Is p a cell of one of our pages that is currently handed out? Never crashes on foreign pointers.
bool cell_is_live(const void* p);
// Is p a cell of one of our pages that carries the free tag (on a free list or a remote stack)?
bool cell_is_free(const void* p);

// ---- segment life and slot runs (segment.cpp)
// An empty segment: a spare from the pool, or a new mapping. nullptr when the OS refuses (errno
// untouched), after giving back the spares and cached huge blocks and trying once more.
Segment* segment_create();
void segment_destroy(Segment* s);              // unmap; the segment must have no page in use
// An empty segment its heap lets go: kept in the spare pool (bounded), or unmapped.
void segment_retire(Segment* s);
size_t segment_flush_spares();                 // unmap every spare (trim); returns how many
// Take `n` consecutive free slots of `s` for a page, a dirty run (still resident) before a clean
// one; returns the first slot or 0 when none (dirty_only: when no run is all dirty). *zero tells
// whether all of them were fresh or purged.
unsigned segment_take_slots(Segment* s, unsigned n, bool* zero, bool dirty_only = false);
// Take slots [first, first + n) if they are all free (a span growing in place); false otherwise.
bool segment_take_slots_at(Segment* s, unsigned first, unsigned n);
// Give a page's slots back: they become free and dirty (purged now when the purge delay is 0).
void segment_give_slots(Segment* s, unsigned first, unsigned n);
// Bytes of dirty free slots over all segments: a walk (takes g_segments_lock). No counter is kept
// for it: one would be a line that every page set-up and retirement on every thread writes.
size_t segments_dirty_bytes();
// Purge the dirty free slots of `s` freed at or before `cutoff_ms` (all of them: INT64_MAX).
// Returns the bytes purged. Takes s->lock.
size_t segment_purge(Segment* s, int64_t cutoff_ms);

// The global list of segments, for the purger, trim, stats and fork.
extern SpinLock g_segments_lock;
extern Segment* g_segments;
extern std::atomic<size_t> g_segment_count;

}  // namespace km

namespace km {
// fork: the segments lock, then every segment's lock, in list order.
void segments_fork_prepare();
void segments_fork_parent();
void segments_fork_child(bool whole);   // whole: prepare took every lock
}  // namespace km
