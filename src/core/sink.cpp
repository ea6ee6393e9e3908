// sink.cpp — see sink.h.
#include "core/sink.h"

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "core/heap.h"
#include "core/purge.h"
#include "core/purge_work.h"
#include "core/thin.h"
#include "platform/os.h"

namespace km {
namespace {
constexpr unsigned kOsShift = 12;   // os::kPageSize
// Written under the sink lock, read by the stats summary.
std::atomic<size_t> g_sinks{0}, g_sunk_bytes{0};
// Single free OS pages too, unlike the owner's thinning while other threads run (heap_thin): the
// purger makes the calls, once per wave of frees into an idle heap, not on a program thread's path.
// 545 MB of 100-byte cells, 98% freed at random into two idle heaps: 476 MiB resident after the
// sinks with runs of 2 or more, 373 MiB with single OS pages too.
constexpr unsigned kMinRun = 1;

// Cells going back to the owner, as one chain.
struct Chain {
  Block* first = nullptr;
  void add(Block* b) {
    b->next = first;
    first = b;
  }
};

// Add `cells` cells on the OS pages `bits` to pg's sink note; list the page on h if it had none.
// The collector may be reading the note (a few loads and stores): wait for it.
void note(Heap* h, Page* pg, uint32_t cells, const uint64_t* bits) {
  uint8_t st = __atomic_load_n(&pg->sunk_state, __ATOMIC_RELAXED);
  while (st == kSunkTaking || !__atomic_compare_exchange_n(&pg->sunk_state, &st, kSunkWriting, false,
                                                          __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
    os::cpu_relax();
    st = __atomic_load_n(&pg->sunk_state, __ATOMIC_RELAXED);
  }
  pg->sunk_cells += cells;
  uint64_t* noted = sunk_bits(segment_of(pg->start), pg);
  for (unsigned i = 0; i < 4; ++i) noted[i] |= bits[i];
  __atomic_store_n(&pg->sunk_state, kSunkListed, __ATOMIC_RELEASE);
  if (st == kSunkNone) remote_push_sunk(&h->remote, pg);
}

// The held cells [cells, cells + n) of page pg of h, sorted and distinct: give back the OS pages that
// they alone cover, note the cells on them on the page, and put the others in `back`. Returns the
// bytes given back.
size_t sink_page(Heap* h, Page* pg, Block** cells, size_t n, Chain* back) {
  bool plain = pg->cell_size != 0 && !pg->span && page_heap(pg) == h && !page_has(pg, kPageSecure);
  if (!plain) {
    for (size_t i = 0; i < n; ++i) back->add(cells[i]);
    return 0;
  }
  const size_t cs = pg->cell_size;
  const unsigned os_pages = unsigned((size_t(pg->capacity) * cs + os::kPageSize - 1) >> kOsShift);
  uint16_t held[256] = {};
  for (size_t i = 0; i < n; ++i) {
    unsigned f, l;
    cell_os_pages(pg, cells[i], &f, &l);
    for (unsigned k = f; k <= l; ++k) ++held[k];
  }
  // An OS page every cell of which is held: no cell on it is handed out, listed, dropped by the
  // owner's thinning or still to carve.
  uint64_t freeable[4] = {};
  for (unsigned k = 0; k < os_pages; ++k) {
    size_t first = (size_t(k) << kOsShift) / cs;
    size_t last = std::min(((size_t(k + 1) << kOsShift) - 1) / cs, size_t(pg->capacity) - 1);
    if (first <= last && held[k] == last - first + 1) freeable[k >> 6] |= uint64_t(1) << (k & 63);
  }
  uint64_t give[4] = {}, done[4] = {}, refused[4] = {};
  size_t given = 0;
  if (thin_pick_runs(freeable, os_pages, kMinRun, give))
    given = thin_purge_runs(pg->start, os_pages, give, done, refused);
  uint32_t sunk = 0;
  for (size_t i = 0; i < n; ++i) {
    if (given && cell_overlaps(pg, done, cells[i])) ++sunk;   // its memory is gone: on no list now
    else back->add(cells[i]);
  }
  if (sunk) note(h, pg, sunk, done);
  return given;
}

// The sink under way, between two of its steps, when it may let the pass lock go (purge_pass_yield):
// all that a fork child must hand back to the heap (sink_fork_child). Under g_sink_lock (purge.cpp).
struct Sinking {
  Heap* h;
  Block* pending[2];   // cells taken and not yet sorted out by segment: the stack's, the parked
  Segment* segs;    // segments with cells sorted out (Segment::sink_*), not yet looked at
  Chain back;       // cells looked at and not given back: parked at the end
  Block** buf;      // the sort buffer (a mapping of buf_bytes)
  size_t buf_bytes;
};
Sinking g_sinking;
// Cells sorted out by segment between two pauses: a few milliseconds of cache misses.
constexpr size_t kSortOutStep = 64 * 1024;

// Sort g_sinking.pending out by segment (Segment::sink_*). Returns the most cells of one segment.
uint32_t sort_out() {
  Sinking& k = g_sinking;
  uint32_t most = 0;
  for (Block*& pending : k.pending) {
    while (pending) {
      for (size_t n = 0; pending && n < kSortOutStep; ++n) {
        Block* b = pending;
        check_remote_link(b);
        pending = b->next;
        Segment* s = segment_of(b);
        if (s->sink_count == 0) {
          s->sink_next = k.segs;
          k.segs = s;
        }
        b->next = s->sink_cells;
        s->sink_cells = b;
        most = std::max(most, ++s->sink_count);
      }
      purge_pass_yield();
    }
  }
  return most;
}

// Segment s's cells: give back what they alone cover, the rest into g_sinking.back.
size_t sink_segment(Segment* s) {
  Sinking& k = g_sinking;
  size_t given = 0;
  if (k.buf) {
    size_t n = 0;
    for (Block* b = s->sink_cells; b; b = b->next) k.buf[n++] = b;
    std::sort(k.buf, k.buf + n);
    // A cell twice on the stack was freed twice (one whose tag went with a sunk OS page, sink.h):
    // count it once, and send it back once.
    n = size_t(std::unique(k.buf, k.buf + n) - k.buf);
    for (size_t i = 0; i < n;) {
      Page* pg = page_of(s, k.buf[i]);
      size_t j = i + 1;
      while (j < n && page_of(s, k.buf[j]) == pg) ++j;
      given += sink_page(k.h, pg, k.buf + i, j - i, &k.back);
      i = j;
    }
  } else {   // no memory for the buffer: all of them back as they are
    for (Block* b = s->sink_cells; b;) {
      Block* next = b->next;
      k.back.add(b);
      b = next;
    }
  }
  s->sink_cells = nullptr;
  s->sink_count = 0;
  return given;
}

// Take h's remote stack and what the last sink parked, give back what those cells alone cover, and
// park the rest (RemoteStack::parked): the stack stays empty, so that the next free onto it notes
// the purger again. The cells are sorted out by segment first (the stack runs in the order they were
// freed), so that a page's held cells are all looked at together, with a buffer of at most a
// segment's cells. Half a gigabyte of cells takes about a second, mostly cache misses: the pass
// lock is let go between steps of a few milliseconds for a fork that waits (purge_pass_yield).
size_t sink_heap(Heap* h) {
  Sinking& k = g_sinking;
  k = Sinking{};
  k.h = h;
  k.pending[0] = h->remote.head.exchange(nullptr, std::memory_order_acquire);
  k.pending[1] = h->remote.parked.exchange(nullptr, std::memory_order_acquire);
  uint32_t most = sort_out();
  k.buf_bytes = os::page_round(size_t(most) * sizeof(Block*));
  k.buf = k.segs ? static_cast<Block**>(os::map(k.buf_bytes)) : nullptr;
  size_t given = 0;
  while (Segment* s = k.segs) {
    given += sink_segment(s);
    k.segs = s->sink_next;
    s->sink_next = nullptr;
    purge_pass_yield();
  }
  if (k.buf) os::unmap(k.buf, k.buf_bytes);
  // Only the purger sets `parked`, and it took it above: nothing there to keep.
  h->remote.parked.store(k.back.first, std::memory_order_release);
  // The owner may have exited meanwhile, its exit's collection done: the purger's drain of pooled
  // heaps takes what was left here (thread_exit looks after marking it abandoned: one of the two
  // sees the other).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if ((k.back.first || given) && h->remote.abandoned.load(std::memory_order_relaxed)) purge_work_note();
  if (given) {
    g_sinks.fetch_add(1, std::memory_order_relaxed);
    g_sunk_bytes.fetch_add(given, std::memory_order_relaxed);
  }
  k = Sinking{};
  return given;
}
}  // namespace

bool heaps_sink_idle(long delay) {
  const int64_t now = os::now_ms();
  const int64_t wait = (delay > 0 ? delay : 1) * kSinkDelays;
  bool watching = false;
  for (Heap* h = heaps_all(); h; h = h->all_next) {
    if (h->orphan || h->stranded) continue;
    uint32_t tick = __atomic_load_n(&h->tick, __ATOMIC_RELAXED);
    Block* head = h->remote.head.load(std::memory_order_relaxed);
    // Nothing new since the last sink (which leaves the stack empty), or a pooled heap (the purger's
    // drain of exited threads' heaps collects it as an owner would): nothing to watch.
    if (!head || h->remote.abandoned.load(std::memory_order_relaxed)) {
      h->sink_since = 0;
      continue;
    }
    if (h->sink_since == 0) {   // frees wait: watch whether the owner takes a slow path
      h->sink_since = now;
      h->sink_tick = tick;
      watching = true;
      continue;
    }
    if (tick != h->sink_tick) {   // it did: it collects by itself; a later first free notes again
      h->sink_since = 0;
      h->sink_rounds = 0;
      continue;
    }
    int64_t due = std::max(h->sink_since + wait, h->sink_at + (wait << std::min(h->sink_rounds, 10u)));
    if (now < due) {
      watching = true;
      continue;
    }
    sink_heap(h);
    h->sink_at = now;
    h->sink_rounds++;
    h->sink_since = 0;
  }
  return watching;
}

void sink_totals(size_t* sinks, size_t* bytes) {
  *sinks = g_sinks.load(std::memory_order_relaxed);
  *bytes = g_sunk_bytes.load(std::memory_order_relaxed);
}

void sink_fork_child(bool whole) {
  Sinking& k = g_sinking;
  if (whole && k.h) {
    // Everything it held, parked as one chain: the cells to sort out, those of each segment not
    // looked at yet, and those looked at and kept.
    Block* all = k.back.first;
    auto append = [&all](Block* chain) {
      if (!chain) return;
      Block* last = chain;
      while (last->next) last = last->next;
      last->next = all;
      all = chain;
    };
    append(k.pending[0]);
    append(k.pending[1]);
    for (Segment* s = k.segs; s;) {
      Segment* next = s->sink_next;
      append(s->sink_cells);
      s->sink_cells = nullptr;
      s->sink_count = 0;
      s->sink_next = nullptr;
      s = next;
    }
    k.h->remote.parked.store(all, std::memory_order_relaxed);
    if (k.buf) os::unmap(k.buf, k.buf_bytes);
  }
  // Without the locks the purger may have been anywhere in a step: its cells stay with it (a leak
  // in this child, never a cell handed out twice), as a torn heap's do.
  k = Sinking{};
}

void heaps_sink_all() {
  for (Heap* h = heaps_all(); h; h = h->all_next) {
    if (h->orphan || h->stranded || h->remote.abandoned.load(std::memory_order_relaxed)) continue;
    if (remote_pending(&h->remote) || h->remote.parked.load(std::memory_order_relaxed)) sink_heap(h);
    h->sink_since = 0;
  }
}

}  // namespace km
