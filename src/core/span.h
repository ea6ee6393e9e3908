// span.h — large blocks as runs of slots inside the thread heap's own segments.
//
// A request above the largest lane, up to kSpanMax, takes a run of 1..63 consecutive 64 KiB slots of a
// segment of the calling thread's heap (a new segment when none has a long enough run). Its Page has
// span = 1 and describes one cell: start = the block (64 KiB-aligned), cell_size = its usable bytes
// (the request rounded up to the OS page), capacity = carved = 1. So free() finds it by masking the
// address and frees it on the fast path, a cross-thread free goes to the owner's remote stack like a
// cell's, and no lock is taken but the segment's own (shared with the purger).
// Free slots coalesce by construction (a bitmap), are reused by segment_take_slots (the lowest run
// that is already resident, else the lowest run: address-ordered first fit, which keeps the free
// space in few long runs and reuses warm memory first), and are purged after the delay.
// Invariants: a span's slots are mapped to its Page (segment_map_slots); cell_size <= slots * 64 KiB
// (less the guard page in secure mode); only the owner thread changes a span's Page.
#pragma once
#include <cstddef>

#include "core/heap.h"
#include "platform/os.h"

namespace km {

// The largest span, in slots (at most every slot of a segment but the header's).
#ifndef KM_SPAN_SLOTS
#define KM_SPAN_SLOTS 63
#endif
constexpr unsigned kMaxSpanSlots = KM_SPAN_SLOTS;
static_assert(kMaxSpanSlots >= 3 && kMaxSpanSlots <= kSlotsPerSegment - kFirstSlot);
constexpr size_t kSpanMax = size_t(kMaxSpanSlots) << kSlotShift;

// Will a block of `size` bytes be a span (not a huge block)?
bool span_fits(size_t size);
// A span for `size` bytes (kLargestLane < size, span_fits): 64 KiB-aligned; zero: reads as zeros.
// nullptr when the OS refuses (errno untouched).
void* span_alloc(size_t size, bool zero);
// Owner: the span's block was freed; its slots go back to the segment.
void span_release(Heap* h, Page* pg);
// realloc keeps span pg as it is for `size` bytes: they fit and waste at most half (nothing changes,
// so any thread may ask). A secure span keeps its usable size exact to the page, its guard page
// right after it, and free_sized checks the size against it: in place only while `size` rounds to
// the same pages. Inline: realloc is often called on every append, and this is the answer it
// usually gets.
KM_INLINE bool span_keeps(const Page* pg, size_t size) {
  if (page_has(pg, kPageSecure)) return os::page_round(size) == pg->cell_size;
  return size <= pg->cell_size && size >= pg->cell_size / 2;
}
// realloc of span p to `size` (> kLargestLane) without moving: shrink by giving back trailing slots,
// grow into the free slots after it. Only the owner may; false: the caller moves the block.
bool span_resize(Page* pg, void* p, size_t size);

}  // namespace km
