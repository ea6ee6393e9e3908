// invariants.cpp — see invariants.h. Compiled in every build (cheap to keep honest), called only in
// the checks build.
#include "core/invariants.h"

#include "core/diag.h"
#include "core/size_class.h"

namespace km {
namespace {
[[noreturn]] void broken(const char* what, const void* where) {
  fatal_pointer("checks", what, where);
}

// Length of a plain (unencoded) free list of pg, checking each cell on it.
uint32_t walk(const Page* pg, const Block* b) {
  uint32_t n = 0;
  for (; b; b = b->next) {
    uintptr_t off = reinterpret_cast<uintptr_t>(b) - reinterpret_cast<uintptr_t>(pg->start);
    if (off % pg->cell_size != 0 || off / pg->cell_size >= pg->carved)
      broken("a free list holds a pointer that is not a carved cell of its page", b);
    if (b->tag != free_tag(pg, b))
      broken("a cell on a free list lacks the free tag (written after free?)", b);
    if (++n > pg->carved) broken("a free list is longer than the page (a cycle)", pg);
  }
  return n;
}
}  // namespace

void check_page(const Page* pg, bool current) {
  if (pg->cell_size == 0) return;   // a free slot
  if (pg->span) {   // one block of whole OS pages, in its slots
    if (pg->capacity != 1 || pg->carved != 1 || pg->used > 1 || pg->cell_size % 4096 != 0 ||
        pg->cell_size > (size_t(pg->slots) << kSlotShift))
      broken("span counts or size out of order", pg);
    return;
  }
  if (pg->cell_size != lane_size(pg->lane)) broken("page cell size does not match its lane", pg);
  if (page_live(pg) > pg->carved || pg->carved > pg->capacity) broken("page counts out of order", pg);
  if (current != ((pg->used & kUsedCurrent) != 0))
    broken("kUsedCurrent not on exactly its lane's current page", pg);
  if (size_t(pg->capacity) * pg->cell_size > (size_t(pg->slots) << kSlotShift))
    broken("page capacity exceeds its slots", pg);
  if (page_has(pg, kPageSecure)) return;   // encoded lists: checked as they are popped
  // Every carved cell is handed out (counted in used, remote frees included), on one list, or
  // dropped by thinning. A page a fork child inherited may be one short (heap_fork_inherit).
  uint32_t counted = walk(pg, pg->free) + walk(pg, pg->local_free) + page_live(pg) + pg->dropped;
  if (counted != pg->carved && !(pg->inherited && counted + 1 == pg->carved))
    broken("free + local_free + used + dropped != carved", pg);
}

void check_segment(const Segment* s) {
  if (s->free_slots & ~kAllSlotsFree) broken("slot 0 (the header) marked free", s);
  if (s->dirty_slots & ~s->free_slots) broken("a dirty slot that is not free", s);
  for (unsigned i = kFirstSlot; i < kSlotsPerSegment; ++i) {
    if ((s->free_slots >> i) & 1) continue;
    const Page* pg = &s->pages[s->slot_page[i]];
    unsigned first = s->slot_page[i];
    if (pg->cell_size == 0 || i >= first + pg->slots) broken("a used slot maps to no page", s);
    if (s->slot_pages[i] != pg) broken("slot_pages and slot_page disagree", s);
    check_page(pg, (pg->used & kUsedCurrent) != 0);   // which page is current: the heap's to say
  }
}

}  // namespace km
