// report.cpp — km_stats and the KMALLOC_STATS summary (report.h). Printing uses Msg (diag.h): no
// stdio, no malloc.
#include "core/report.h"

#include "core/diag.h"
#include "core/heap.h"
#include "core/huge.h"
#include "core/mesh.h"
#include "core/options.h"
#include "core/purge_work.h"
#include "core/sink.h"
#include "core/stats.h"
#include "platform/os.h"

namespace km {
namespace {
// Exact bytes in cells handed out, per lane: walks every segment's pages under the segments lock.
// Cells freed by another thread and not yet collected by their owner still count here (per lane); the
// total subtracts them (heaps_remote_pending). The page fields are their owners' (no lock of theirs
// is taken): aligned word loads, so a count being changed is read before or after the change, never
// torn. ThreadSanitizer is told to ignore these reads: they race by design.
#if defined(__SANITIZE_THREAD__)
extern "C" void AnnotateIgnoreReadsBegin(const char* file, int line);
extern "C" void AnnotateIgnoreReadsEnd(const char* file, int line);
struct RacyReads {
  RacyReads() { AnnotateIgnoreReadsBegin(__FILE__, __LINE__); }
  ~RacyReads() { AnnotateIgnoreReadsEnd(__FILE__, __LINE__); }
};
#else
struct RacyReads {};
#endif
// once: only if the lock is free (the in-use sample after a slow path, which must never wait: a
// signal handler may have interrupted this thread's own walk); false when it was not.
bool cells_in_use(size_t* per_lane_bytes, size_t* per_lane_cells, bool once) {
  if (!once) g_segments_lock.lock();
  else if (!g_segments_lock.try_lock()) return false;
  for (Segment* s = g_segments; s; s = s->next) {
    for (unsigned i = kFirstSlot; i < kSlotsPerSegment; ++i) {
      const Page& pg = s->pages[i];
      if (pg.cell_size == 0 || pg.span || s->slot_page[i] != i) continue;
      per_lane_bytes[pg.lane] += size_t(page_live(&pg)) * pg.cell_size;
      per_lane_cells[pg.lane] += page_live(&pg);
    }
  }
  g_segments_lock.unlock();
  return true;
}

// The segments' resident bytes (mincore).
size_t segments_resident() {
  LockGuard g(g_segments_lock);
  size_t resident = 0;
  for (Segment* s = g_segments; s; s = s->next) resident += os::resident_in(s, kSegmentSize);
  return resident;
}

// Bytes in lane cells (per lane), the counters (spans among them), and the bytes freed across threads
// and not yet collected, from one snapshot: a collection moves a cell or span from "pending" to free
// in two steps, and a purger draining an exited thread's heap collects thousands (a few ms) while the
// pages are walked. Retried until no collection overlapped the reads, for at most kSnapshotMs: a
// collection that never ends for us (a signal handler that interrupted one on this thread) costs
// that once.
struct Snapshot {
  size_t lane_bytes[kLaneCount], lane_cells[kLaneCount];
  StatCounters k;
  size_t pending;
};
constexpr int64_t kSnapshotMs = 100;
// once: a single try that gives up (false) rather than wait for a lock or a collection.
bool take_snapshot(Snapshot* s, bool once = false) {
  int64_t give_up = 0;
  for (int tries = 0;; ++tries) {
    uint64_t before = heaps_collect_seq();
    for (unsigned l = 0; l < kLaneCount; ++l) s->lane_bytes[l] = s->lane_cells[l] = 0;
    {
      // The pages' counts and the heaps' kept cells are their owners' (see cells_in_use).
      [[maybe_unused]] RacyReads racy;   // an empty struct without ThreadSanitizer
      if (!cells_in_use(s->lane_bytes, s->lane_cells, once)) return false;
      stats_counters(&s->k);
      s->pending = heaps_remote_pending();
    }
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    uint64_t after = heaps_collect_seq();
    if (before == after && !(before >> 63)) return true;
    if (once) return false;
    if (tries < 8) continue;
    int64_t now = os::now_ms();
    if (!give_up) give_up = now + kSnapshotMs;
    if (now >= give_up) return true;
    os::yield();
  }
}

// What the program holds: cells and large blocks, less what other threads freed (collected or not).
size_t in_use_of(const Snapshot& snap) {
  size_t handed_out = size_t(snap.k.span_bytes) + size_t(snap.k.huge_bytes);
  for (unsigned l = 0; l < kLaneCount; ++l) handed_out += snap.lane_bytes[l];
  return handed_out > snap.pending ? handed_out - snap.pending : 0;
}

// os_walks: resident (mincore over every segment), process_resident (/proc) and dirty (a walk);
// without them those three read 0.
void stats_from(Stats* out, const Snapshot& snap, bool os_walks = true) {
  const StatCounters& k = snap.k;
  os::Counters c = os::counters();
  out->span_count = size_t(k.spans);
  out->span_bytes = size_t(k.span_bytes);
  out->huge_count = size_t(k.huges);
  out->huge_bytes = size_t(k.huge_bytes);
  out->large_in_use = out->span_bytes + out->huge_bytes;
  out->in_use = in_use_of(snap);
  stats_in_use_sampled(long(out->in_use), stats_held(k));   // a read is a sample too
  out->peak_in_use = size_t(k.in_use_peak) > out->in_use ? size_t(k.in_use_peak) : out->in_use;
  out->mapped = c.mapped_bytes;
  out->large_cached = huge_cached_bytes();
  // kmalloc's own: segments (mincore) and the huge mappings live or cached (resident until purged).
  out->resident = os_walks ? segments_resident() + out->huge_bytes + out->large_cached : 0;
  out->process_resident = os_walks ? os::resident_bytes() : 0;
  out->metadata = size_t(k.metadata);
  out->dirty = os_walks ? segments_dirty_bytes() : 0;
  out->mmap_count = c.mmap_count;
  out->munmap_count = c.munmap_count;
  out->purge_count = c.purge_count;
  out->purged = c.purged_bytes;
  out->heaps = heap_count();
  out->segments = g_segment_count.load(std::memory_order_relaxed);
}
}  // namespace

void report_poll() {
  if (KM_LIKELY(!stats_take_sample_due())) return;
  Snapshot snap;
  if (!take_snapshot(&snap, true)) return stats_sample_again();
  stats_in_use_sampled(long(in_use_of(snap)), stats_held(snap.k));
}

void stats_reset_peaks_now() {
  Snapshot snap;
  take_snapshot(&snap);
  stats_reset_peaks(long(in_use_of(snap)));
}

void stats_get(Stats* out, bool os_walks) {
  Snapshot snap;
  take_snapshot(&snap);
  stats_from(out, snap, os_walks);
}

void stats_print() {
  Snapshot snap;   // the lane table below and the totals from one snapshot
  take_snapshot(&snap);
  Stats st;
  stats_from(&st, snap);
  const size_t* bytes = snap.lane_bytes;
  const size_t* cells = snap.lane_cells;
  const StatCounters& k = snap.k;
  Msg m;
  m.str("statistics\n").emit();
  m.str("  in use        ").bytes(st.in_use).pad(30).str("peak ").bytes(st.peak_in_use).str("\n").emit();
  size_t held = size_t(stats_held(k)), held_peak = size_t(k.held_peak) > held ? size_t(k.held_peak) : held;
  m.str("  held          ").bytes(held).pad(30).str("peak ").bytes(held_peak)
      .str(" (cells of lane pages, in use or free, and large blocks)\n").emit();
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
  size_t sinks, sunk;
  sink_totals(&sinks, &sunk);
  if (sinks)
    m.str("  idle heaps    ").num(sinks).str(" sinks gave back ").bytes(sunk)
        .str(" (frees by other threads into idle threads' heaps)\n").emit();
  // What meshing would give back (an estimate: kmalloc does not mesh), for the README's question.
  MeshEstimate me;
  if (mesh_estimate(&me) && me.resident)
    m.str("  mesh estimate ").bytes(me.resident).str(" of OS pages with live cells; meshing could free ")
        .bytes(me.pairs).str(" (pairs), ").bytes(me.any).str(" (any number per frame)\n").emit();
  // Only the lanes that hold something now: an empty lane is noise (a short program touches few).
  m.str("  lane = size class: a request gets a cell of the smallest lane it fits; empty lanes left out\n").emit();
  m.str("  lane        cells in use   bytes in use   pages   peak pages\n").emit();
  for (unsigned l = 1; l < kLaneCount; ++l) {
    long pages = k.lane_pages[l];
    long peak = k.lane_pages_peak[l];
    if (pages == 0 && cells[l] == 0) continue;
    m.str("  ").num(lane_size(l)).pad(14).num(cells[l]).pad(29).bytes(bytes[l]).pad(44).snum(pages)
        .pad(52).snum(peak).str("\n").emit();
  }
}


// Runs at exit (after the program's own destructors).
__attribute__((destructor)) static void report_at_exit() {
  if (option(Opt::stats)) stats_print();
}

}  // namespace km
