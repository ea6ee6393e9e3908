// mesh.cpp — the meshing estimate (mesh.h).
#include "core/mesh.h"

#include <algorithm>
#include <cstdint>

#include "core/segment.h"
#include "platform/os.h"

namespace km {
namespace {
constexpr size_t kOsPage = os::kPageSize;
constexpr unsigned kGranule = 16;                 // every cell size is a multiple of it
constexpr unsigned kGranules = kOsPage / kGranule;   // 256: four words of bits
constexpr unsigned kWindow = 64;                  // open frames a page is tried against (first fit)

// One resident OS page of a lane page that holds a live cell: the granules its live cells cover.
// Two pages can share a frame only with the same layout: the same lane and the same cell phase.
struct Entry {
  uint32_t layout;   // lane << 17 | offset of the OS page from the lane page's start, mod cell size
  uint32_t live;     // live granules
  uint64_t bits[kGranules / 64];
};

bool disjoint(const uint64_t* a, const uint64_t* b) {
  for (unsigned w = 0; w < kGranules / 64; ++w)
    if (a[w] & b[w]) return false;
  return true;
}

void mark(uint64_t* bits, size_t from, size_t to) {   // granules [from, to)
  for (size_t g = from; g < to; ++g) bits[g / 64] |= uint64_t(1) << (g % 64);
}

// The entries of lane page pg; returns how many were written (at most cap).
size_t page_entries(const Page* pg, Entry* out, size_t cap) {
  size_t cell = pg->cell_size;
  size_t carved_bytes = size_t(pg->carved) * cell;
  size_t os_pages = (carved_bytes + kOsPage - 1) / kOsPage;
  unsigned char resident[256] = {};
  if (os_pages > sizeof resident || !os::resident_pages(pg->start, os_pages, resident)) return 0;
  size_t n = 0;
  for (size_t k = 0; k < os_pages && n < cap; ++k) {
    if (!resident[k]) continue;
    size_t lo = k * kOsPage, hi = lo + kOsPage;
    Entry e{};
    for (size_t j = lo / cell; j < pg->carved && j * cell < hi; ++j) {
      size_t cs = j * cell;
      size_t start_page = cs / kOsPage;
      bool dropped = !resident[start_page] || (pg->thinned[start_page / 64] >> (start_page % 64)) & 1;
      if (dropped) continue;   // given back by thinning: free
      auto* b = reinterpret_cast<const Block*>(pg->start + cs);
      if (b->tag == free_tag(pg, b)) continue;   // on a free list or a remote stack
      size_t from = cs > lo ? cs - lo : 0, to = cs + cell < hi ? cs + cell - lo : kOsPage;
      mark(e.bits, from / kGranule, to / kGranule);
    }
    for (uint64_t w : e.bits) e.live += unsigned(__builtin_popcountll(w));
    if (e.live == 0) continue;   // no live cell: thinning's work, not meshing's
    e.layout = uint32_t(pg->lane) << 17 | uint32_t(lo % cell);
    out[n++] = e;
  }
  return n;
}

// Frames freed by greedy first-fit meshing of entries [0, n) (sorted by layout), at most `per_frame`
// OS pages per frame. Frames are merged bitmaps kept in place of the entry that opened them.
size_t mesh_count(Entry* e, size_t n, unsigned per_frame) {
  size_t saved = 0;
  for (size_t group = 0; group < n;) {
    size_t end = group;
    while (end < n && e[end].layout == e[group].layout) ++end;
    size_t open[kWindow];
    unsigned open_n = 0, members[kWindow];
    for (size_t i = group; i < end; ++i) {
      bool placed = false;
      for (unsigned f = 0; f < open_n && !placed; ++f) {
        Entry& frame = e[open[f]];
        if (members[f] >= per_frame || !disjoint(frame.bits, e[i].bits)) continue;
        for (unsigned w = 0; w < kGranules / 64; ++w) frame.bits[w] |= e[i].bits[w];
        ++members[f];
        ++saved;
        placed = true;
      }
      if (placed) continue;
      if (open_n == kWindow) {   // forget the oldest frame
        for (unsigned f = 1; f < open_n; ++f) open[f - 1] = open[f], members[f - 1] = members[f];
        --open_n;
      }
      open[open_n] = i;
      members[open_n++] = 1;
    }
    group = end;
  }
  return saved;
}

bool meshable(const Page& pg) { return pg.cell_size && !pg.span && !page_has(&pg, kPageSecure); }

// Calls f on every lane page that meshing could take part in (plain lane pages; not spans, not
// secure pages, whose free cells carry no plain tag). Under g_segments_lock.
struct AllPages {
  template <class F>
  void operator()(F&& f) const {
    for (Segment* s = g_segments; s; s = s->next)
      for (unsigned i = kFirstSlot; i < kSlotsPerSegment; ++i)
        if (s->slot_page[i] == i && meshable(s->pages[i])) f(s->pages[i]);
  }
};
struct GivenPages {
  const Page* const* pages;
  size_t n;
  template <class F>
  void operator()(F&& f) const {
    for (size_t i = 0; i < n; ++i)
      if (meshable(*pages[i])) f(*pages[i]);
  }
};

// The entries of every page, sparsest first within a layout (sparse pages fill a frame before a
// dense one closes it). Returns how many.
template <class Each>
size_t collect(const Each& each, Entry* e, size_t cap) {
  size_t n = 0;
  each([&](const Page& pg) { n += page_entries(&pg, e + n, cap - n); });
  std::sort(e, e + n, [](const Entry& a, const Entry& b) {
    return a.layout != b.layout ? a.layout < b.layout : a.live < b.live;
  });
  return n;
}

template <class Each>
bool estimate(const Each& each, MeshEstimate* out) {
  *out = MeshEstimate{};
  size_t cap = 0;
  each([&](const Page& pg) { cap += (size_t(pg.carved) * pg.cell_size + kOsPage - 1) / kOsPage; });
  if (cap == 0) return true;
  size_t bytes = (cap * sizeof(Entry) + kOsPage - 1) & ~(kOsPage - 1);
  auto* e = static_cast<Entry*>(os::map(bytes));
  if (!e) return false;
  size_t n = collect(each, e, cap);
  out->resident = n * kOsPage;
  out->pairs = mesh_count(e, n, 2) * kOsPage;
  n = collect(each, e, cap);   // mesh_count merged frames in place: take the pages afresh
  out->any = mesh_count(e, n, ~0u) * kOsPage;
  os::unmap(e, bytes);
  return true;
}
}  // namespace

bool mesh_estimate(MeshEstimate* out) {
  LockGuard g(g_segments_lock);
  return estimate(AllPages{}, out);
}

bool mesh_estimate_pages(const Page* const* pages, size_t n, MeshEstimate* out) {
  return estimate(GivenPages{pages, n}, out);
}

}  // namespace km
