// span.cpp — see span.h.
#include "core/span.h"

#include <cstring>

#include "core/diag.h"
#include "core/secure.h"
#include "core/stats.h"
#include "core/thread.h"
#include "platform/os.h"

namespace km {
namespace {
// Secure mode: an inaccessible OS page right after the usable bytes.
size_t guard_bytes() { return secure_enabled() ? os::kPageSize : 0; }
unsigned slots_for(size_t usable) {
  return unsigned((usable + guard_bytes() + kSlotSize - 1) >> kSlotShift);
}

// Secure mode: move span pg's guard page from its end to the end of `usable` (larger) bytes. The new
// guard is set before the old one is lifted, so the block is never unguarded; false (a refusal)
// leaves it as it was. The old guard's page becomes memory of the block: it reads zero, as the
// slots a growth takes do (freed secure memory is zeroed).
bool secure_move_guard(Page* pg, size_t usable) {
  char* old_guard = pg->start + pg->cell_size;
  if (!secure_guard(pg->start + usable)) return false;
  if (os::protect_rw(old_guard, os::kPageSize)) return true;
  if (!os::protect_rw(pg->start + usable, os::kPageSize))
    fatal_pointer("realloc", "cannot lift the guard page after span", pg->start);
  return false;
}
}  // namespace

bool span_fits(size_t size) { return size <= kSpanMax && slots_for(os::page_round(size)) <= kMaxSpanSlots; }

void* span_alloc(size_t size, bool zero) {
  size_t usable = os::page_round(size);
  unsigned n = slots_for(usable);
  SpinLock* held;
  Heap* h = heap_for_thread(&held);
  if (!h) return nullptr;
  HeapBusy busy(h);
  // Spans freed by other threads come back first: their slots may serve this request.
  if (remote_pending(&h->remote)) collect_remote(h);
  Segment* s;
  bool fresh = false;
  unsigned first = heap_take_slots(h, n, &s, &fresh);
  if (!first) {
    if (held) held->unlock();
    return nullptr;
  }
  char* start = reinterpret_cast<char*>(s) + (size_t(first) << kSlotShift);
  if (secure_enabled() && !secure_guard(start + usable)) {
    heap_give_slots(h, s, first, n);   // too many mappings (vm.max_map_count): fail cleanly
    if (held) held->unlock();
    return nullptr;
  }
  segment_map_slots(s, first, first, n);
  Page* pg = &s->pages[first];
  *pg = Page{};
  pg->start = start;
  page_geometry(pg, usable);
  pg->capacity = pg->used = 1;
  page_add_carved(pg, 1);
  pg->slots = uint8_t(n);
  pg->span = 1;
  pg->zero_init = fresh;
  pg->owner = h->owner_id | (secure_enabled() ? kPageSecure : 0);
  pg->heap = h;
  stats_span_add(&h->stats, long(usable));   // before the orphan heap's lock goes: h's counters
  if (held) held->unlock();
  // A dirty slot may hold an old cell's free tag at this very address: clear it, as a pop does.
  if (zero && !fresh) std::memset(start, 0, usable);
  else reinterpret_cast<Block*>(start)->tag = 0;
  return start;
}

void span_release(Heap* h, Page* pg) {
  Segment* s = segment_of(pg->start);
  unsigned first = page_first_slot(s, pg), n = pg->slots;
  if (page_has(pg, kPageSecure)) {
    secure_zero(pg->start, pg->cell_size);   // freed memory reads zero
    if (!os::protect_rw(pg->start + pg->cell_size, os::kPageSize))
      fatal_pointer("free", "cannot lift the guard page after span", pg->start);
  }
  stats_span_add(&h->stats, -long(pg->cell_size));
  *pg = Page{};
  heap_give_slots(h, s, first, n);
}

bool span_resize(Page* pg, void* p, size_t size) {
  bool secure = page_has(pg, kPageSecure);
  if (page_heap(pg) != tl_heap) return false;
  HeapBusy busy(tl_heap);
  size_t usable = os::page_round(size);
  if (usable > kSpanMax) return false;
  unsigned n = slots_for(usable);
  Segment* s = segment_of(p);
  unsigned first = page_first_slot(s, pg), had = pg->slots;
  if (usable <= pg->cell_size) {
    if (secure) return false;   // it shrinks by copy, which zeroes what it leaves
    if (span_keeps(pg, usable)) return true;
    if (n < had) heap_give_slots(tl_heap, s, first + n, had - n);
  } else if (n > had) {
    if (first + n > kSlotsPerSegment || !segment_take_slots_at(s, first + had, n - had)) return false;
    segment_map_slots(s, first, first + had, n - had);
  }
  // A secure span's guard follows its new end; refused, the slots just taken go back.
  if (secure && usable > pg->cell_size && !secure_move_guard(pg, usable)) {
    if (n > had) heap_give_slots(tl_heap, s, first + had, n - had);
    return false;
  }
  stats_span_add(&tl_heap->stats, long(usable) - long(pg->cell_size), false);
  pg->slots = uint8_t(n);
  page_geometry(pg, usable);
  return true;
}

}  // namespace km
