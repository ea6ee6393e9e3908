// The core without the override: km_* functions from the static library, beside glibc's malloc.
#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <thread>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "core/heap.h"
#include "core/mesh.h"
#include "core/options.h"
#include "core/report.h"
#include "core/segment.h"
#include "core/size_class.h"
#include "core/stats.h"
#include "platform/os.h"
#include "fresh_heaps.h"
#include "kmalloc.h"

namespace {

size_t rss() {
  km_stats st;
  km_stats_get(&st);
  return st.resident;
}

TEST(Lanes, EveryLaneHandsOutDistinctAlignedCellsAndTakesThemBack) {
  for (unsigned lane = 1; lane < km::kLaneCount; ++lane) {
    size_t size = km::lane_size(lane);
    std::vector<char*> cells;
    for (int i = 0; i < 20; ++i) {
      auto* p = static_cast<char*>(km_malloc(size));
      ASSERT_NE(p, nullptr);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 16, 0u);
      EXPECT_EQ(km_usable_size(p), size);
      std::memset(p, int(i), size);
      cells.push_back(p);
    }
    std::set<char*> distinct(cells.begin(), cells.end());
    EXPECT_EQ(distinct.size(), cells.size());
    for (int i = 0; i < 20; ++i) {
      EXPECT_EQ(cells[i][0], char(i));
      EXPECT_EQ(cells[i][size - 1], char(i));   // no neighbour overwrote it
      km_free(cells[i]);
    }
  }
}

TEST(Lanes, AMallocFreeLoopReusesCellsAndNeverGrows) {
  km_test::in_thread([] {   // the lane starts empty: no partly used page of an earlier test's heap
    km_stats before, after;
    void* warm = km_malloc(100);
    km_free(warm);
    km_stats_get(&before);
    std::set<void*> seen;
    for (int i = 0; i < 200000; ++i) {
      void* p = km_malloc(100);
      seen.insert(p);
      km_free(p);
    }
    km_stats_get(&after);
    EXPECT_EQ(after.mapped, before.mapped);
    EXPECT_EQ(after.mmap_count, before.mmap_count);
    // Freed cells come back once the page's current batch is used up: one page's worth at most.
    EXPECT_LE(seen.size(), km::kSlotSize / 112);
  });
}

// A lane's list is first in, first out: a full page that gets a cell back goes behind the pages
// already waiting, so that when the current page runs out the next one has had time to gather frees
// (a page that just got one cell back, taken at once, would give one malloc per slow path).
TEST(Lanes, APageThatGetsACellBackWaitsBehindTheOthers) {
  std::thread([] {
    const size_t size = 48;
    std::vector<void*> cells;
    std::vector<const km::Page*> pages;   // in the order they were first used
    const km::Page* pg = nullptr;
    while (pages.size() < 4) {
      void* p = km_malloc(size);
      ASSERT_NE(p, nullptr);
      cells.push_back(p);
      pg = km::page_of(km::segment_of(p), p);
      if (pages.empty() || pages.back() != pg) pages.push_back(pg);
    }
    // pages[1] and pages[2] are full; pages[3] is current. One cell back into each, [1] first.
    void* first = nullptr;
    void* second = nullptr;
    for (void*& p : cells) {
      const km::Page* q = km::page_of(km::segment_of(p), p);
      if (!first && q == pages[1]) std::swap(first, p);
      else if (!second && q == pages[2]) std::swap(second, p);
    }
    ASSERT_NE(first, nullptr);
    ASSERT_NE(second, nullptr);
    km_free(first);
    km_free(second);
    // Use up the current page; then the two cells come back in the order their pages did.
    void* p;
    while (true) {
      p = km_malloc(size);
      cells.push_back(p);
      if (km::page_of(km::segment_of(p), p) != pages[3]) break;
    }
    EXPECT_EQ(p, first);
    p = km_malloc(size);
    cells.push_back(p);
    EXPECT_EQ(p, second);
    for (void* c : cells)
      if (c) km_free(c);
  }).join();
}

// In the calling thread: 48-byte cells fill page `a`, then one more starts page `b`, the current
// page; a gets one cell back (behind b on the list) and b's only cell is freed: b is empty, current,
// with a behind it. The cells still held on a are in `held`.
struct EmptiedCurrentPage {
  static constexpr size_t kSize = 48;
  const unsigned lane = km::lane_of(kSize);
  std::vector<void*> held;
  const km::Page* a = nullptr;
  const km::Page* b = nullptr;
  EmptiedCurrentPage() {
    void* p = km_malloc(kSize);
    a = km::page_of(km::segment_of(p), p);
    while (km::page_of(km::segment_of(p), p) == a) {
      held.push_back(p);
      p = km_malloc(kSize);
    }
    b = km::page_of(km::segment_of(p), p);
    km_free(held.back());
    held.pop_back();
    km_free(p);
  }
  ~EmptiedCurrentPage() {
    for (void* c : held) km_free(c);
  }
};

// The current page carries kUsedCurrent in its count, so emptying it is no event for free's fast path
// even when other pages wait behind it: it is not queued for retirement, and malloc goes on from it.
TEST(Lanes, ACurrentPageThatEmptiesStaysCurrentAndIsNotRetired) {
  std::thread([] {
    km_free(km_malloc(16));   // the heap is set up: retiring_count is read before the frees
    km::Heap* h = km::tl_heap;
    unsigned retiring = h->retiring_count;
    EmptiedCurrentPage t;
    ASSERT_EQ(h->lane_page[t.lane], t.b);
    ASSERT_EQ(t.b->next, t.a);
    EXPECT_EQ(km::page_live(t.b), 0u);
    EXPECT_EQ(t.b->used, km::kUsedCurrent);
    EXPECT_EQ(h->retiring_count, retiring) << "the current page was queued for retirement";
    void* q = km_malloc(t.kSize);
    EXPECT_EQ(km::page_of(km::segment_of(q), q), t.b);
    km_free(q);
  }).join();
}

// ...but once its lane is idle (no malloc moved to the page since the last thinning pass), the
// periodic pass retires it like any emptied page: the page behind it becomes current.
TEST(Lanes, AnEmptiedCurrentPageOfAnIdleLaneIsRetiredByThePeriodicPass) {
  std::thread([] {
    EmptiedCurrentPage t;
    km::Heap* h = km::tl_heap;
    ASSERT_EQ(h->lane_page[t.lane], t.b);
    // Two passes: the first sees b refilled since the one before, the second retires it. Each round
    // makes the pass due (the heap's last one long ago) and takes well over 64 slow paths in another
    // lane (one-cell first batches), so one of them runs it. (Not the purge delay option: the
    // purger thread reads it.)
    std::vector<void*> other;
    for (int round = 0; round < 2; ++round) {
      h->thin_ms = 0;
      for (int i = 0; i < 500; ++i) other.push_back(km_malloc(3000));
    }
    EXPECT_EQ(h->lane_page[t.lane], t.a) << "the idle lane's empty current page was not retired";
    for (void* c : other) km_free(c);
  }).join();
}

TEST(Lanes, CellsOfOnePageShareItsSegment) {
  void* a = km_malloc(48);
  void* b = km_malloc(48);
  EXPECT_EQ(km::segment_of(a), km::segment_of(b));
  EXPECT_TRUE(km::is_segment(km::segment_of(a)));
  km_free(a);
  km_free(b);
}

TEST(Lanes, OwnershipIsKnownForOursAndNotForOthers) {
  void* ours = km_malloc(64);
  void* theirs = malloc(64);   // glibc's, in this test binary
  int on_stack = 0;
  EXPECT_TRUE(km_owns(ours));
  EXPECT_FALSE(km_owns(theirs));
  EXPECT_FALSE(km_owns(&on_stack));
  EXPECT_FALSE(km_owns(static_cast<char*>(ours) + 8));   // interior pointer
  km_free(ours);
  EXPECT_FALSE(km_owns(ours));   // freed
  free(theirs);
}

TEST(Large, CallocOfAReusedBlockIsZero) {
  auto* p = static_cast<unsigned char*>(km_malloc(1 << 20));
  std::memset(p, 0xAB, 1 << 20);
  km_free(p);
  auto* q = static_cast<unsigned char*>(km_calloc(1, 1 << 20));
  for (size_t i = 0; i < (1 << 20); i += 512) ASSERT_EQ(q[i], 0) << i;
  km_free(q);
}

TEST(Purge, TrimGivesEmptyPagesBackToTheOS) {
  // Run in a fresh thread so its heap starts empty; fill ~64 MiB of small cells, free them all.
  size_t resident_full = 0, resident_trimmed = 0;
  std::thread t([&] {
    std::vector<void*> v;
    for (int i = 0; i < 64 * 1024; ++i) {
      void* p = km_malloc(1000);
      std::memset(p, 1, 1000);
      v.push_back(p);
    }
    resident_full = rss();
    for (void* p : v) km_free(p);
    km_trim(0);
    resident_trimmed = rss();
  });
  t.join();
  EXPECT_GT(resident_full, resident_trimmed + (40u << 20))
      << "full " << resident_full << " trimmed " << resident_trimmed;
}

TEST(Purge, EmptyPagesArePurgedAfterTheDelayWithoutFurtherCalls) {
  // The default delay is 10 ms and the purger thread runs: idle memory must drop on its own.
  // The purger starts at two live heaps. This thread holds one, as the main thread of any program
  // does, so the test does not depend on an earlier test having started it.
  void* keep = km_malloc(16);
  size_t resident_full = 0;
  std::thread t([&] {
    std::vector<void*> v;
    for (int i = 0; i < 32 * 1024; ++i) {
      void* p = km_malloc(2000);
      std::memset(p, 1, 2000);
      v.push_back(p);
    }
    resident_full = rss();
    for (void* p : v) km_free(p);
  });
  t.join();
  size_t resident_idle = resident_full;
  for (int i = 0; i < 100 && resident_idle + (40u << 20) > resident_full; ++i) {
    usleep(20 * 1000);   // no allocator call happens here
    resident_idle = rss();
  }
  EXPECT_GT(resident_full, resident_idle + (40u << 20))
      << "full " << resident_full << " idle " << resident_idle;
  km_free(keep);
}

// Without a purger thread (a single-threaded process, here a fork child), the allocator's slow paths
// purge. Memory freed in a burst shorter than the purge delay is purged on later slow paths even when
// they note nothing new (pages set up in dirty slots retire nothing): the poll keeps the work pending.
TEST(Purge, WithoutAPurgerThreadLaterSlowPathsPurgeWhatAnEarlierBurstFreed) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    km::g_options[int(km::Opt::purge_thread)] = 0;   // as in a process that never had a second thread
    static void* big[16384];   // 2000 B cells: 32 MiB of pages
    for (auto& p : big) {
      p = km_malloc(2000);
      std::memset(p, 1, 2000);
    }
    size_t full = rss();
    for (void* p : big) km_free(p);
    // 100 cells of 64 B a millisecond for 50 ms: about 20 slow paths (a carve of 256 cells each),
    // fewer than it takes the heap to retire the burst's last pages (Heap::kRetireAfter), which
    // would note new work.
    [[maybe_unused]] static void* small[5000];
    size_t now = full;
    for (int i = 0; i < 50 && now + (16u << 20) > full; ++i) {
      for (int j = 0; j < 100; ++j) small[i * 100 + j] = km_malloc(64);
      usleep(1000);
      now = rss();
    }
    _exit(now + (16u << 20) <= full ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "resident did not fall by 16 MiB within 50 ms of slow paths";
}

// Lane pages are counted per heap and summed when read (stats.h): pages two threads set up show in
// the sum, with the peak; once freed and trimmed, the count is back where it was, whichever heap
// retired them.
TEST(Stats, PageCountersOfEveryHeapAreSummed) {
  const unsigned lane = km::lane_of(3000);
  km_test::FreshHeaps fresh;   // the two threads make new pages, adopting none of earlier tests'
  km_trim(0);
  km::StatCounters before;
  km::stats_counters(&before);
  std::vector<void*> a, b;
  auto fill = [](std::vector<void*>* v) {
    for (int i = 0; i < 400; ++i) v->push_back(km_malloc(3000));   // 21 cells to a page: 20 pages
  };
  std::thread ta(fill, &a), tb(fill, &b);
  ta.join();
  tb.join();
  km::StatCounters during;
  km::stats_counters(&during);
  EXPECT_GE(during.lane_pages[lane], before.lane_pages[lane] + 36) << "pages of both heaps";
  EXPECT_GE(during.page_bytes, before.page_bytes + 36 * 21 * 3072);
  EXPECT_GE(during.held_peak, during.page_bytes + during.span_bytes + during.huge_bytes);
  EXPECT_GE(during.lane_pages_peak[lane], during.lane_pages[lane]);
  for (void* p : a) km_free(p);   // their threads exited: freed into pooled heaps
  for (void* p : b) km_free(p);
  km_trim(0);
  km::StatCounters after;
  for (int i = 0; i < 200; ++i) {   // the purger drains the pooled heaps' frees
    km::stats_counters(&after);
    if (after.lane_pages[lane] <= before.lane_pages[lane]) break;
    usleep(10 * 1000);
    km_trim(0);
  }
  EXPECT_LE(after.lane_pages[lane], before.lane_pages[lane]);
  EXPECT_GE(after.lane_pages[lane], 0);
}

// The peak of "in use" is what the program held at its highest, not what pages held: a phase that
// leaves sparse pages behind and then fills new pages of another lane holds more pages than ever,
// with less in use. No fast path counts in use; the slow paths sample it as pages grow (stats.h).
TEST(Stats, PeakInUseIsWhatTheProgramHeldNotWhatItsPagesHold) {
  km_test::in_thread([] {
    km_trim(0);
    km::stats_reset_peaks_now();
    km_stats a;
    km_stats_get(&a);
    constexpr size_t kSmall = (32u << 20) / 64, kLarge = (16u << 20) / 4096;
    std::vector<void*> small(kSmall), large;
    for (void*& p : small) p = km_malloc(64);   // no read of the stats until the end
    for (size_t i = 0; i < kSmall; ++i)
      if (i % 16) km_free(small[i]);           // 15 in 16 die: every page keeps a few cells
    for (size_t i = 0; i < kLarge; ++i) large.push_back(km_malloc(4000));
    km_stats b;
    km_stats_get(&b);
    km::StatCounters k;
    km::stats_counters(&k);
    const size_t phase1 = kSmall * 64, held = size_t(k.page_bytes + k.span_bytes + k.huge_bytes);
    EXPECT_GE(held, a.in_use + phase1 + (kLarge * 4096) * 3 / 4) << "the sparse pages and the new ones";
    EXPECT_LE(b.in_use, a.in_use + phase1 / 16 + kLarge * 4096 + (1u << 20));
    // Sampled while phase 1 grew: within a sixteenth of what pages held (and 1 MiB of other lanes).
    EXPECT_GE(b.peak_in_use + held / 16 + (1u << 20), a.in_use + phase1) << "the phase-1 peak was missed";
    EXPECT_LE(b.peak_in_use, a.in_use + phase1 + (1u << 20)) << "the peak counts free cells of pages";
    for (size_t i = 0; i < kSmall; i += 16) km_free(small[i]);
    for (void* p : large) km_free(p);
  });
}

TEST(Stats, CountInUseBytesExactly) {
  km_stats a, b;
  km_stats_get(&a);
  std::vector<void*> v;
  for (int i = 0; i < 100; ++i) v.push_back(km_malloc(48));
  km_stats_get(&b);
  EXPECT_EQ(b.in_use - a.in_use, 100u * km::lane_size(km::lane_of(48)));   // cells: 48 B with 4 lanes
  for (void* p : v) km_free(p);
  km_stats_get(&b);
  EXPECT_EQ(b.in_use, a.in_use);
  EXPECT_GE(b.peak_in_use, a.in_use);
  EXPECT_GT(b.mapped, 0u);
  EXPECT_GT(b.segments, 0u);
}

}  // namespace

namespace {
// is_carved_cell's divisibility test against plain division, for every lane size, span-like sizes
// (page multiples, odd multiples of 4 KiB) and odd test sizes: every offset near each of the first
// cells, at the carved limit and beyond, below the start, and near the ends of the range where the
// test is exact (2^23 bytes either side of start: any pointer of the page's own segment).
TEST(Geometry, CarvedCellTestMatchesDivision) {
  std::vector<size_t> sizes;
  for (unsigned lane = 1; lane < km::kLaneCount; ++lane) sizes.push_back(km::lane_size(lane));
  for (size_t s : {size_t(4096) * 33, size_t(4096) * 63 * 16, size_t(135168), size_t(3), size_t(24),
                   size_t(1) << 22})
    sizes.push_back(s);
  alignas(64) static char base[64];
  for (size_t cell : sizes) {
    km::Page pg{};
    pg.start = base;
    km::page_geometry(&pg, cell);
    km::page_add_carved(&pg, 7);
    auto check = [&](int64_t off) {
      const void* p = reinterpret_cast<const void*>(reinterpret_cast<uintptr_t>(base) + uint64_t(off));
      bool want = off >= 0 && uint64_t(off) % cell == 0 && uint64_t(off) / cell < pg.carved;
      ASSERT_EQ(km::is_carved_cell(&pg, p), want) << "cell " << cell << " offset " << off;
    };
    for (uint64_t idx = 0; idx < 10; ++idx)
      for (int64_t d = -17; d <= 17; ++d) check(int64_t(idx * cell) + d);
    for (int64_t end : {int64_t(1) << 23, -(int64_t(1) << 23)})
      for (int64_t d = -4096; d <= 4096; ++d) check(end + d);
    // cell_index: the index of every cell start up to the end of that range.
    for (uint64_t idx = 0; idx * cell < (uint64_t(1) << 23); idx += idx < 64 ? 1 : 1 + idx / 8)
      ASSERT_EQ(km::cell_index(&pg, base + idx * cell), idx) << "cell " << cell;
  }
  km::Page empty{};   // a free slot: nothing is a cell of it
  EXPECT_FALSE(km::is_carved_cell(&empty, base));
}
}  // namespace

namespace {
// A fresh page carves one OS page of cells first (a lane a small program barely uses keeps the rest
// of its 64 KiB untouched), then the full batch (16 KiB) once those are all handed out.
TEST(Pages, FirstCarveTouchesOneOsPageThenAFullBatch) {
  constexpr size_t kBytes = 65536;
  void* mem = km::os::map(kBytes);
  ASSERT_NE(mem, nullptr);
  km::Page pg{};
  ASSERT_TRUE(km::page_setup(&pg, static_cast<char*>(mem), kBytes, 1, km::lane_of(16), 16, nullptr, 0x40, true));
  ASSERT_TRUE(km::page_refill(&pg));
  EXPECT_EQ(pg.carved, 4096u / 16);
  EXPECT_EQ(km::os::resident_in(mem, kBytes), size_t(4096));
  while (pg.free) km::page_pop(&pg, false);   // hand every carved cell out
  ASSERT_TRUE(km::page_refill(&pg));
  EXPECT_EQ(pg.carved, (4096u + 16384u) / 16);
  EXPECT_EQ(km::os::resident_in(mem, kBytes), size_t(4096 + 16384));
  km::page_teardown(&pg, kBytes);
  km::os::unmap(mem, kBytes);
}

// A loop that holds one block at a time gives its page's only handed-out cell back before each
// malloc: a refill that finds a single cell carves a batch more, or every malloc would miss.
TEST(Pages, ARefillThatFindsOneCellCarvesABatchMore) {
  constexpr size_t kBytes = 65536, kCell = 3072;
  void* mem = km::os::map(kBytes);
  ASSERT_NE(mem, nullptr);
  km::Page pg{};
  ASSERT_TRUE(km::page_setup(&pg, static_cast<char*>(mem), kBytes, 1, km::lane_of(kCell), kCell, nullptr, 0x40, true));
  ASSERT_TRUE(km::page_refill(&pg));
  ASSERT_EQ(pg.carved, 1u);   // the first batch is one OS page: one cell of this size
  auto* b = static_cast<km::Block*>(km::page_pop(&pg, false));
  km::page_push(&pg, b);
  ASSERT_TRUE(km::page_refill(&pg));
  EXPECT_EQ(pg.carved, 1u + 16384u / kCell);
  unsigned listed = 0;
  bool has_b = false;
  for (km::Block* c = pg.free; c; c = c->next, ++listed) has_b |= c == b;
  EXPECT_EQ(listed, pg.carved) << "the cell that came back and the new batch are all on free";
  EXPECT_TRUE(has_b);
  EXPECT_FALSE(pg.free_is_fresh) << "a used cell is on free: calloc must clear it";
  km::page_teardown(&pg, kBytes);
  km::os::unmap(mem, kBytes);
}
}  // namespace

namespace {
// The meshing estimate on a page whose survivors sit at known places: 64 OS pages of 1024-byte cells
// (4 per OS page), one survivor each, at position k % 4 of OS page k. Pages with survivors at
// different positions can share a frame: pairs free 32 OS pages, any number per frame 48 (4 to a
// frame). With every survivor at position 0 nothing can be meshed.
struct MeshPage {
  static constexpr size_t kBytes = 4 * 65536;   // 64 OS pages
  void* mem = km::os::map(kBytes);
  km::Page pg{};
  std::vector<km::Block*> cells;
  MeshPage() {
    EXPECT_TRUE(km::page_setup(&pg, static_cast<char*>(mem), kBytes, 4, km::lane_of(1024), 1024, nullptr, 0x40, true));
    while (km::page_refill(&pg))
      while (pg.free) cells.push_back(static_cast<km::Block*>(km::page_pop(&pg, false)));
  }
  void keep_one_per_os_page(unsigned positions) {
    for (size_t i = 0; i < cells.size(); ++i) {
      size_t os_page = i / 4, pos = i % 4;
      if (pos != os_page % positions) km::page_push(&pg, cells[i]);   // freed: carries the free tag
    }
  }
  ~MeshPage() {
    km::page_teardown(&pg, kBytes);
    km::os::unmap(mem, kBytes);
  }
};

TEST(Mesh, EstimateCountsFramesThatDisjointPagesCouldShare) {
  MeshPage m;
  ASSERT_EQ(m.cells.size(), 256u);
  m.keep_one_per_os_page(4);
  const km::Page* pages[] = {&m.pg};
  km::MeshEstimate e;
  ASSERT_TRUE(km::mesh_estimate_pages(pages, 1, &e));
  EXPECT_EQ(e.resident, size_t(64 * 4096));
  EXPECT_EQ(e.pairs, size_t(32 * 4096));
  EXPECT_EQ(e.any, size_t(48 * 4096));
}

TEST(Mesh, EstimateIsZeroWhenSurvivorsOverlap) {
  MeshPage m;
  m.keep_one_per_os_page(1);
  const km::Page* pages[] = {&m.pg};
  km::MeshEstimate e;
  ASSERT_TRUE(km::mesh_estimate_pages(pages, 1, &e));
  EXPECT_EQ(e.resident, size_t(64 * 4096));
  EXPECT_EQ(e.pairs, 0u);
  EXPECT_EQ(e.any, 0u);
}
}  // namespace
