// segment.cpp — mapping segments, handing out runs of slots, purging the free ones.
#include "core/segment.h"

#include <cstddef>

#include "core/huge.h"
#include "core/options.h"
#include "core/purge_work.h"
#include "core/stats.h"
#include "platform/os.h"

namespace km {

std::atomic<uint8_t> g_segment_map[kSegmentMapEntries];
SpinLock g_segments_lock;
Segment* g_segments = nullptr;
std::atomic<size_t> g_segment_count{0};
uint64_t g_page_secret = 0x5DEECE66Dull;   // replaced by random bits at start-up (runtime.cpp)

namespace {
// The free slots of mask m become used (s->lock held); the dirty ones among them are resident again.
void take_run(Segment* s, uint64_t m) {
  s->free_slots &= ~m;
  set_dirty_slots(s, s->dirty_slots & ~m);
}

// A mask of `n` consecutive slots starting at `first`.
uint64_t run_mask(unsigned first, unsigned n) {
  return (n >= 64 ? ~uint64_t(0) : ((uint64_t(1) << n) - 1)) << first;
}
}  // namespace

// ---- the spare pool: empty segments no heap uses, kept mapped (their slots purged after the delay)
// so that a burst that frees everything and allocates again, or a new thread, maps nothing. Any heap
// adopts one. Guarded by g_spare_lock, taken alone (never with another allocator lock held inside).
namespace {
SpinLock g_spare_lock;
Segment* g_spare = nullptr;   // linked through heap_next, most recently retired first
unsigned g_spare_count = 0;
constexpr unsigned kSpareMax = 128;   // 512 MiB of address space, none of it resident once purged

Segment* spare_take() {
  LockGuard g(g_spare_lock);
  Segment* s = g_spare;
  if (s) {
    g_spare = s->heap_next;
    --g_spare_count;
    s->heap_next = nullptr;
  }
  return s;
}
}  // namespace

void segment_retire(Segment* s) {
  {
    LockGuard g(g_spare_lock);
    if (g_spare_count < kSpareMax) {
      s->heap_next = g_spare;
      g_spare = s;
      ++g_spare_count;
      return;
    }
  }
  segment_destroy(s);
}

size_t segment_flush_spares() {
  size_t n = 0;
  while (Segment* s = spare_take()) {
    segment_destroy(s);
    ++n;
  }
  return n;
}

Segment* segment_create() {
  if (Segment* s = spare_take()) return s;
  auto* s = static_cast<Segment*>(os::map_aligned(kSegmentSize, kSegmentSize));
  // Out of address space (RLIMIT_AS, or the kernel refusing): give back what is only kept for reuse.
  if (!s && (segment_flush_spares() + huge_purge_expired(INT64_MAX)) > 0)
    s = static_cast<Segment*>(os::map_aligned(kSegmentSize, kSegmentSize));
  if (!s) return nullptr;
  // Fresh mmap memory is zero: only the non-zero fields need writing.
  s->free_slots = kAllSlotsFree;
  // Until a page takes it, every slot maps to pages[0] (slot 0 is the header, so that Page stays
  // zeroed): free() of a pointer into an unused slot then meets cell_size 0 and is reported.
  for (auto& pg : s->slot_pages) pg = &s->pages[0];
  if (reinterpret_cast<uintptr_t>(s) >> kSegmentShift >= kSegmentMapEntries) {
    os::unmap(s, kSegmentSize);   // above the 47-bit space the map covers: never ours
    return nullptr;
  }
  map_store(s, kMapSegment);
  {
    LockGuard g(g_segments_lock);
    s->next = g_segments;
    if (g_segments) g_segments->prev = s;
    g_segments = s;
  }
  g_segment_count.fetch_add(1, std::memory_order_relaxed);
  stats_metadata_add(sizeof(Segment));
  return s;
}

void segment_destroy(Segment* s) {
  {
    LockGuard g(g_segments_lock);
    if (s->prev) s->prev->next = s->next;
    else g_segments = s->next;
    if (s->next) s->next->prev = s->prev;
  }
  map_store(s, 0);
  g_segment_count.fetch_sub(1, std::memory_order_relaxed);
  stats_metadata_add(-long(sizeof(Segment)));
  os::unmap(s, kSegmentSize);
}

unsigned segment_take_slots(Segment* s, unsigned n, bool* zero, bool dirty_only) {
  LockGuard g(s->lock);
  uint64_t run = s->free_slots;   // bit i survives if slots i..i+n-1 are all free
  for (unsigned k = 1; k < n && run; ++k) run &= s->free_slots >> k;
  if (!run) return 0;
  // Prefer a run that reuses dirty memory (already resident) over touching clean memory.
  uint64_t dirty_run = run;
  for (unsigned k = 0; k < n && dirty_run; ++k) dirty_run &= s->dirty_slots >> k;
  if (dirty_only && !dirty_run) return 0;
  unsigned first = unsigned(__builtin_ctzll(dirty_run ? dirty_run : run));
  uint64_t m = run_mask(first, n);
  *zero = (s->dirty_slots & m) == 0;
  take_run(s, m);
  return first;
}

bool segment_take_slots_at(Segment* s, unsigned first, unsigned n) {
  if (first + n > kSlotsPerSegment) return false;
  uint64_t m = run_mask(first, n);
  LockGuard g(s->lock);
  if ((s->free_slots & m) != m) return false;
  take_run(s, m);
  return true;
}

void segment_give_slots(Segment* s, unsigned first, unsigned n) {
  uint64_t m = run_mask(first, n);
  char* base = reinterpret_cast<char*>(s) + (size_t(first) << kSlotShift);
  if (option(Opt::purge_delay_ms) == 0 && os::purge(base, size_t(n) << kSlotShift)) {
    LockGuard g(s->lock);
    s->free_slots |= m;
    return;
  }
  int64_t now = os::now_ms();
  {
    LockGuard g(s->lock);
    s->free_slots |= m;
    set_dirty_slots(s, s->dirty_slots | m);
    for (unsigned i = first; i < first + n; ++i) s->dirty_ms[i] = now;
  }
  purge_work_note();
}

size_t segments_dirty_bytes() {
  size_t slots = 0;
  LockGuard g(g_segments_lock);
  for (Segment* s = g_segments; s; s = s->next)
    slots += size_t(__builtin_popcountll(__atomic_load_n(&s->dirty_slots, __ATOMIC_RELAXED)));
  return slots << kSlotShift;
}

size_t segment_purge(Segment* s, int64_t cutoff_ms) {
  size_t purged = 0;
  LockGuard g(s->lock);   // held across madvise: the owner cannot reuse a slot being purged
  uint64_t todo = s->dirty_slots;
  while (todo) {
    unsigned first = unsigned(__builtin_ctzll(todo));
    unsigned end = first;
    while (end < kSlotsPerSegment && ((todo >> end) & 1) && s->dirty_ms[end] <= cutoff_ms) ++end;
    if (end == first) {   // not yet expired
      todo &= todo - 1;
      continue;
    }
    uint64_t m = run_mask(first, end - first);
    size_t len = size_t(end - first) << kSlotShift;
    if (os::purge(reinterpret_cast<char*>(s) + (size_t(first) << kSlotShift), len)) {
      set_dirty_slots(s, s->dirty_slots & ~m);
      purged += len;
    }
    todo &= ~m;
  }
  return purged;
}

namespace {
// The page of p if p is the start of a carved cell in one of our segments, else nullptr. Never
// crashes on a foreign pointer.
const Page* carved_cell_page(const void* p) {
  Segment* s = segment_of(p);
  if (!is_segment(s)) return nullptr;
  const Page* page = page_of(s, p);
  return is_carved_cell(page, p) ? page : nullptr;
}
}  // namespace

bool cell_is_live(const void* p) { return is_segment(segment_of(p)) && live_cell_page(p); }

bool cell_is_free(const void* p) {
  const Page* page = carved_cell_page(p);
  return page && static_cast<const Block*>(p)->tag == free_tag(page, p);
}

}  // namespace km

namespace km {
// The segments lock, then every segment's lock, in list order (the list is stable while it is held).
void segments_fork_prepare() {
  g_spare_lock.lock();
  g_segments_lock.lock();
  for (Segment* s = g_segments; s; s = s->next) s->lock.lock();
}
void segments_fork_parent() {
  for (Segment* s = g_segments; s; s = s->next) s->lock.unlock();
  g_segments_lock.unlock();
  g_spare_lock.unlock();
}
void segments_fork_child(bool whole) {
  g_segments_lock.reset_in_child();
  g_spare_lock.reset_in_child();
  if (!whole) {   // the list, the spares and any segment's bitmaps may be torn: forget them all
    g_segments = nullptr;
    g_spare = nullptr;
    g_spare_count = 0;
    g_segment_count.store(0, std::memory_order_relaxed);
    return;
  }
  for (Segment* s = g_segments; s; s = s->next) s->lock.reset_in_child();
}
}  // namespace km
