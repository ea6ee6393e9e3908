// page.cpp — a lane page's cells: set-up, lazy carving, refill from the local free list (or from the
// OS pages thinning gave back), pop and push. Owner thread only; the lists a page is on are heap.cpp's.
#include "core/page.h"

#include "core/secure.h"
#include "core/thin.h"

namespace km {

namespace {
// Cells are carved in batches of about this many bytes: enough that a run of mallocs refills rarely,
// few enough that a page whose lane is barely used keeps its untouched OS pages out of the resident set.
// A page's first batch is one OS page: most lanes of a small program never need a second one.
constexpr uint32_t kCarveBytes = 16384;
constexpr uint32_t kFirstCarveBytes = 4096;
}  // namespace

void page_geometry(Page* pg, size_t cell) {
  pg->cell_size = uint32_t(cell);
  pg->mul = uint64_t(((unsigned __int128)1 << 64) / cell) + 1;   // floor, + 1 even for a power of 2
  pg->key = g_page_secret ^ reinterpret_cast<uintptr_t>(pg->start);
}

bool page_setup(Page* pg, char* start, size_t bytes, unsigned slots, unsigned lane, size_t cell,
                Heap* heap, uintptr_t owner, bool zero) {
  *pg = Page{};
  pg->start = start;
  page_geometry(pg, cell);
  pg->capacity = uint32_t((secure_enabled() ? secure_page_bytes(bytes) : bytes) / cell);
  pg->owner = owner;
  pg->heap = heap;
  pg->lane = uint8_t(lane);
  pg->slots = uint8_t(slots);
  pg->zero_init = zero;
  if (secure_enabled()) {
    page_set(pg, kPageSecure);
    if (!secure_page_setup(pg, bytes)) {
      *pg = Page{};
      return false;
    }
  }
  return true;
}

void page_teardown(Page* pg, size_t bytes) {
  if (page_has(pg, kPageSecure)) secure_page_teardown(pg, bytes);
  *pg = Page{};
}

namespace {
// Thread a batch of never-used cells onto the front of `free`, in address order.
void page_carve(Page* pg) {
  uint32_t n = pg->capacity - pg->carved;
  uint32_t batch = (pg->carved ? kCarveBytes : kFirstCarveBytes) / pg->cell_size;
  if (batch < 1) batch = 1;
  if (n > batch) n = batch;
  char* first = pg->start + size_t(pg->carved) * pg->cell_size;
  Block* prev = pg->free;
  bool fresh = pg->zero_init && !prev;
  for (uint32_t i = n; i-- > 0;) {   // back to front, so the list runs in address order
    auto* b = reinterpret_cast<Block*>(first + size_t(i) * pg->cell_size);
    b->next = prev;
    b->tag = free_tag(pg, b);
    prev = b;
  }
  pg->free = prev;
  page_add_carved(pg, n);
  pg->free_is_fresh = fresh;
}
}  // namespace

bool page_refill(Page* pg) {
  if (pg->free) return true;
  if (pg->local_free) {
    page_swap_local(pg);
    // One cell came back: a loop that holds one block at a time would miss on every malloc. A batch
    // more (if the page has never-used cells) makes that every batch.
    if (!pg->free->next && page_can_carve(pg)) page_carve(pg);
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
  Block* b = page_take(pg);
  if (zero) zero_popped(pg, b);
  return b;
}

void page_push(Page* pg, Block* b) {
  if (page_has(pg, kPageSecure)) return secure_push(pg, b);
  b->next = pg->local_free;
  b->tag = free_tag(pg, b);
  pg->local_free = b;
}

}  // namespace km
