// stats.cpp — counters and the exit summary. Printing uses Msg (diag.h): no stdio, no malloc.
#include "core/stats.h"

#include <atomic>

#include "core/diag.h"
#include "core/heap.h"
#include "core/huge.h"
#include "core/size_class.h"
#include "platform/os.h"

namespace km {
namespace {
std::atomic<long> g_metadata{0}, g_page_bytes{0}, g_peak{0};
std::atomic<long> g_span_bytes{0}, g_spans{0}, g_huge_bytes{0}, g_huges{0};
std::atomic<long> g_lane_pages[kLaneCount], g_lane_pages_peak[kLaneCount];

void raise_to(std::atomic<long>& peak, long v) {
  long cur = peak.load(std::memory_order_relaxed);
  while (v > cur && !peak.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
  }
}

// Exact bytes in cells handed out, per lane: walks every segment's pages under the segments lock.
// Cells freed by another thread and not yet collected by their owner still count here (per lane); the
// total subtracts them (heaps_remote_pending). `resident`: the segments' resident bytes (mincore).
void cells_in_use(size_t* per_lane_bytes, size_t* per_lane_cells, size_t* resident) {
  LockGuard g(g_segments_lock);
  for (Segment* s = g_segments; s; s = s->next) {
    if (resident) *resident += os::resident_in(s, kSegmentSize);
    for (unsigned i = kFirstSlot; i < kSlotsPerSegment; ++i) {
      const Page& pg = s->pages[i];
      if (pg.cell_size == 0 || pg.span || s->slot_page[i] != i) continue;
      per_lane_bytes[pg.lane] += size_t(pg.used) * pg.cell_size;
      per_lane_cells[pg.lane] += pg.used;
    }
  }
}
}  // namespace

void stats_metadata_add(long bytes) { g_metadata.fetch_add(bytes, std::memory_order_relaxed); }

void stats_page_add(unsigned lane, long bytes) {
  g_page_bytes.fetch_add(bytes, std::memory_order_relaxed);
  long pages = g_lane_pages[lane].fetch_add(bytes > 0 ? 1 : -1, std::memory_order_relaxed);
  if (bytes > 0) raise_to(g_lane_pages_peak[lane], pages + 1);
}

void stats_span_add(long bytes, bool block) {
  g_span_bytes.fetch_add(bytes, std::memory_order_relaxed);
  if (block) g_spans.fetch_add(bytes > 0 ? 1 : -1, std::memory_order_relaxed);
  if (bytes > 0) stats_peak_update();
}
void stats_huge_add(long bytes, bool block) {
  g_huge_bytes.fetch_add(bytes, std::memory_order_relaxed);
  if (block) g_huges.fetch_add(bytes > 0 ? 1 : -1, std::memory_order_relaxed);
  if (bytes > 0) stats_peak_update();
}

void stats_peak_update() {
  raise_to(g_peak, g_page_bytes.load(std::memory_order_relaxed) + g_span_bytes.load(std::memory_order_relaxed) +
                       g_huge_bytes.load(std::memory_order_relaxed));
}

void stats_get(Stats* out) {
  size_t bytes[kLaneCount] = {}, cells[kLaneCount] = {};
  size_t resident = 0;
  cells_in_use(bytes, cells, &resident);
  size_t in_use = 0;
  for (unsigned l = 0; l < kLaneCount; ++l) in_use += bytes[l];
  os::Counters c = os::counters();
  out->span_count = size_t(g_spans.load(std::memory_order_relaxed));
  out->span_bytes = size_t(g_span_bytes.load(std::memory_order_relaxed));
  out->huge_count = size_t(g_huges.load(std::memory_order_relaxed));
  out->huge_bytes = size_t(g_huge_bytes.load(std::memory_order_relaxed));
  out->large_in_use = out->span_bytes + out->huge_bytes;
  // What the program holds: a cell or span freed by another thread is free, collected or not.
  size_t pending = heaps_remote_pending();
  out->in_use = in_use + out->large_in_use > pending ? in_use + out->large_in_use - pending : 0;
  out->peak_in_use = size_t(g_peak.load(std::memory_order_relaxed));
  if (out->peak_in_use < out->in_use) out->peak_in_use = out->in_use;
  out->mapped = c.mapped_bytes;
  out->large_cached = huge_cached_bytes();
  // kmalloc's own: segments (mincore) and the huge mappings live or cached (resident until purged).
  out->resident = resident + out->huge_bytes + out->large_cached;
  out->process_resident = os::resident_bytes();
  out->metadata = size_t(g_metadata.load(std::memory_order_relaxed));
  out->dirty = g_dirty_bytes.load(std::memory_order_relaxed);
  out->mmap_count = c.mmap_count;
  out->munmap_count = c.munmap_count;
  out->purge_count = c.purge_count;
  out->purged = c.purged_bytes;
  out->heaps = heap_count();
  out->segments = g_segment_count.load(std::memory_order_relaxed);
}

void stats_print() {
  Stats st;
  stats_get(&st);
  size_t bytes[kLaneCount] = {}, cells[kLaneCount] = {};
  cells_in_use(bytes, cells, nullptr);
  Msg m;
  m.str("statistics\n").emit();
  m.str("  in use        ").bytes(st.in_use).pad(30).str("peak ").bytes(st.peak_in_use).str("\n").emit();
  m.str("  spans         ").num(st.span_count).str(" (").bytes(st.span_bytes).str(")").pad(30).str("free slots not yet purged ")
      .bytes(st.dirty).str("\n").emit();
  m.str("  huge blocks   ").num(st.huge_count).str(" (").bytes(st.huge_bytes).str(")").pad(30).str("cached ")
      .bytes(st.large_cached).str("\n").emit();
  m.str("  mapped        ").bytes(st.mapped).pad(30).str("resident ").bytes(st.resident).str(" (process RSS ")
      .bytes(st.process_resident).str(")\n").emit();
  m.str("  metadata      ").bytes(st.metadata).pad(30).str("segments ").num(st.segments).str(", heaps ")
      .num(st.heaps).str("\n").emit();
  m.str("  os calls      mmap ").num(st.mmap_count).str(", munmap ").num(st.munmap_count).str(", purge ")
      .num(st.purge_count).str(" (").bytes(st.purged).str(")\n").emit();
  // Only the lanes that hold something now: an empty lane is noise (a short program touches few).
  m.str("  lane = size class: a request gets a cell of the smallest lane it fits; empty lanes left out\n").emit();
  m.str("  lane        cells in use   bytes in use   pages   peak pages\n").emit();
  for (unsigned l = 1; l < kLaneCount; ++l) {
    long pages = g_lane_pages[l].load(std::memory_order_relaxed);
    long peak = g_lane_pages_peak[l].load(std::memory_order_relaxed);
    if (pages == 0 && cells[l] == 0) continue;
    m.str("  ").num(lane_size(l)).pad(14).num(cells[l]).pad(29).bytes(bytes[l]).pad(44).snum(pages)
        .pad(52).snum(peak).str("\n").emit();
  }
}

}  // namespace km
