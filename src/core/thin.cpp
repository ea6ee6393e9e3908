// thin.cpp — see thin.h.
#include "core/thin.h"

#include <initializer_list>

#include "platform/os.h"

namespace km {
namespace {
constexpr unsigned kOsShift = 12;   // os::kPageSize
constexpr size_t kMinThin = size_t(16) << 10;   // not worth the system call below this
// Lane pages of cells up to 8 KiB span one slot (64 KiB / 16 B = 4096 cells); bigger cells get more
// slots but hold about kMinCellsPerPage cells: 4096 bounds every lane page.
constexpr unsigned kMaxCells = 4096;

bool bit(const uint64_t* m, unsigned i) { return (m[i >> 6] >> (i & 63)) & 1; }
void set_bit(uint64_t* m, unsigned i) { m[i >> 6] |= uint64_t(1) << (i & 63); }
}  // namespace

void cell_os_pages(const Page* pg, const void* b, unsigned* first, unsigned* last) {
  size_t off = size_t(static_cast<const char*>(b) - pg->start);
  *first = unsigned(off >> kOsShift);
  *last = unsigned((off + pg->cell_size - 1) >> kOsShift);
}
bool cell_overlaps(const Page* pg, const uint64_t* m, const void* b) {
  unsigned f, l;
  cell_os_pages(pg, b, &f, &l);
  for (unsigned i = f; i <= l; ++i)
    if (bit(m, i)) return true;
  return false;
}

// Runs of free OS pages, each a system call (and, with other threads running, a TLB shootdown that
// interrupts them): at least min_run OS pages long, and all of them together worth the calls.
unsigned thin_pick_runs(const uint64_t* freeable, unsigned os_pages, unsigned min_run, uint64_t* give) {
  unsigned count = 0;
  for (unsigned k = 0; k < os_pages;) {
    unsigned end = k;
    while (end < os_pages && bit(freeable, end)) ++end;
    if (end - k >= min_run)
      for (; k < end; ++k) set_bit(give, k), ++count;
    k = end + 1;
  }
  if ((size_t(count) << kOsShift) >= kMinThin) return count;
  for (unsigned i = 0; i < 4; ++i) give[i] = 0;
  return 0;
}

size_t thin_purge_runs(char* start, unsigned os_pages, const uint64_t* give, uint64_t* done,
                       uint64_t* refused) {
  size_t purged = 0;
  for (unsigned k = 0; k < os_pages;) {
    if (!bit(give, k)) {
      ++k;
      continue;
    }
    unsigned end = k;
    while (end < os_pages && bit(give, end)) ++end;
    bool ok = os::purge(start + (size_t(k) << kOsShift), size_t(end - k) << kOsShift);
    for (unsigned j = k; j < end; ++j) set_bit(ok ? done : refused, j);
    if (ok) purged += size_t(end - k) << kOsShift;
    k = end;
  }
  return purged;
}

bool page_thin_candidate(const Page* pg) {
  if (pg->cell_size == 0 || pg->span || page_has(pg, kPageSecure) || pg->carved == 0) return false;
  size_t carved = size_t(pg->carved) * pg->cell_size;
  size_t live = size_t(page_live(pg)) * pg->cell_size;
  if (carved - live < kMinThin || live * 2 > carved) return false;
  return pg->used_at_thin == 0 || page_live(pg) * 4 <= pg->used_at_thin * 3;
}

size_t page_thin(Page* pg, unsigned min_run) {
  uint32_t live_now = page_live(pg) ? page_live(pg) : 1;
  pg->used_at_thin = live_now;
  unsigned os_pages = unsigned((size_t(pg->carved) * pg->cell_size + os::kPageSize - 1) >> kOsShift);
  if (pg->carved > kMaxCells) return 0;
  // Free means listed: a cell freed by another thread carries the free tag but waits on its heap's
  // remote stack, linked through its first word: it must count as live here.
  // The lists run through the page in the order cells were freed, one cache miss per cell when the
  // page has gone cold (a sparse page usually has): fetch the page in address order first, which
  // the hardware streams, so that the walks below find their cells in cache.
  size_t step = pg->cell_size < 64 ? 64 : pg->cell_size;   // each cell's first 16 bytes: its link
  for (size_t off = 0, end = size_t(pg->carved) * pg->cell_size; off < end; off += step)
    __builtin_prefetch(pg->start + off);
  uint64_t listed[kMaxCells / 64] = {};
  for (Block* list : {pg->free, pg->local_free})
    for (Block* b = list; b; b = b->next) set_bit(listed, cell_index(pg, b));
  // OS pages holding a byte of a live cell (cells already dropped are free).
  uint64_t live[4] = {};
  for (uint32_t i = 0; i < pg->carved; ++i) {
    auto* b = reinterpret_cast<Block*>(pg->start + size_t(i) * pg->cell_size);
    if (bit(listed, i) || (pg->dropped && cell_overlaps(pg, pg->thinned, b))) continue;
    unsigned f, l;
    cell_os_pages(pg, b, &f, &l);
    for (unsigned k = f; k <= l; ++k) set_bit(live, k);
  }
  uint64_t freeable[4];
  for (unsigned i = 0; i < 4; ++i) freeable[i] = ~live[i] & ~pg->thinned[i];
  uint64_t give[4] = {};
  if (thin_pick_runs(freeable, os_pages, min_run, give) == 0) {
    // Nothing worth giving back: survivors hold every OS page or nearly. Walk the page again only
    // once half of them have gone, not a quarter (page_thin_candidate).
    pg->used_at_thin = (live_now * 2 + 2) / 3;   // live * 4 <= this * 3: live <= live_now / 2
    return 0;
  }
  // Off the lists first: once purged, a cell's link reads zero.
  Block* keep = nullptr;
  uint32_t dropped = 0;
  for (Block* list : {pg->free, pg->local_free}) {
    for (Block* b = list; b;) {
      Block* next = b->next;
      if (cell_overlaps(pg, give, b)) {
        ++dropped;
      } else {
        b->next = keep;
        keep = b;
      }
      b = next;
    }
  }
  pg->free = keep;
  pg->local_free = nullptr;
  pg->free_is_fresh = 0;
  uint64_t refused[4] = {};
  size_t purged = thin_purge_runs(pg->start, os_pages, give, pg->thinned, refused);
  bool any_refused = (refused[0] | refused[1] | refused[2] | refused[3]) != 0;
  // Cells the kernel refused to purge under (and no purged OS page) are intact: back on the list
  // now, so that those OS pages stay candidates for the next pass.
  for (uint32_t i = 0; any_refused && i < pg->carved; ++i) {
    auto* b = reinterpret_cast<Block*>(pg->start + size_t(i) * pg->cell_size);
    if (!bit(listed, i) || !cell_overlaps(pg, refused, b) || cell_overlaps(pg, pg->thinned, b)) continue;
    b->next = pg->free;
    pg->free = b;
    --dropped;
  }
  pg->dropped += dropped;
  if (any_refused) pg->used_at_thin = 0;   // try again on the next pass
  return purged;
}

bool page_thicken(Page* pg) {
  if (pg->dropped == 0) return false;
  for (uint32_t i = 0; i < pg->carved; ++i) {
    auto* b = reinterpret_cast<Block*>(pg->start + size_t(i) * pg->cell_size);
    if (!cell_overlaps(pg, pg->thinned, b)) continue;   // dropped cells are on no list: all go back
    b->next = pg->free;
    b->tag = free_tag(pg, b);
    pg->free = b;
  }
  pg->dropped = 0;
  for (auto& w : pg->thinned) w = 0;
  pg->free_is_fresh = 0;
  return pg->free != nullptr;
}

}  // namespace km
