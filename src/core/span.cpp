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

// A secure span grows in place into its own slots and the free ones after it: the new guard page is
// set before the old one is lifted, so the block is never unguarded, and a refusal on the way leaves
// it as it was. Freed secure memory was zeroed, so the slots it takes read zero. It shrinks by copy
// (realloc's fallback), which zeroes what it leaves.
bool secure_span_grow(Page* pg, Segment* s, unsigned first, unsigned n, size_t usable) {
  if (usable <= pg->cell_size) return false;
  unsigned had = pg->slots;
  if (n > had) {
    if (!segment_take_slots_at(s, first + had, n - had)) return false;
    segment_map_slots(s, first, first + had, n - had);
  }
  char* old_guard = pg->start + pg->cell_size;
  auto give_back = [&] {   // as a shrink gives back its trailing slots
    if (n > had) heap_give_slots(tl_heap, s, first + had, n - had);
  };
  if (!secure_guard(pg->start + usable)) {
    give_back();
    return false;
  }
  if (!os::protect_rw(old_guard, os::kPageSize)) {
    if (!os::protect_rw(pg->start + usable, os::kPageSize))
      fatal_pointer("realloc", "cannot lift the guard page after span", pg->start);
    give_back();
    return false;
  }
  stats_span_add(&tl_heap->stats, long(usable) - long(pg->cell_size), false);
  pg->slots = uint8_t(n);
  page_geometry(pg, usable);
  return true;
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
  pg->capacity = pg->carved = pg->used = 1;
  pg->slots = uint8_t(n);
  pg->span = 1;
  pg->zero_init = fresh;
  pg->owner = reinterpret_cast<uintptr_t>(h) | (secure_enabled() ? kPageSecure : 0);
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
  if ((page_owner(pg) & ~kPageSecure) != reinterpret_cast<uintptr_t>(tl_heap)) return false;
  HeapBusy busy(tl_heap);
  size_t usable = os::page_round(size);
  if (usable > kSpanMax) return false;
  unsigned n = slots_for(usable);
  Segment* s = segment_of(p);
  unsigned first = page_first_slot(s, pg);
  if (secure) return secure_span_grow(pg, s, first, n, usable);
  if (usable <= pg->cell_size) {
    if (span_keeps(pg, usable)) return true;
    if (n < pg->slots) heap_give_slots(tl_heap, s, first + n, pg->slots - n);
  } else if (n > pg->slots) {
    if (first + n > kSlotsPerSegment || !segment_take_slots_at(s, first + pg->slots, n - pg->slots))
      return false;
    segment_map_slots(s, first, first + pg->slots, n - pg->slots);
  }
  stats_span_add(&tl_heap->stats, long(usable) - long(pg->cell_size), false);
  pg->slots = uint8_t(n);
  page_geometry(pg, usable);
  return true;
}

}  // namespace km
