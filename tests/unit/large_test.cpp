// Spans (large blocks in runs of segment slots) and huge blocks (a mapping of their own): the core
// without the override, through km_* and the stats counters.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "core/foreign.h"
#include "core/heap.h"
#include "core/huge.h"
#include "core/pool.h"
#include "core/segment.h"
#include "core/span.h"
#include "kmalloc.h"
#include "platform/os.h"
#include "fresh_heaps.h"

namespace {

km_stats stats() {
  km_stats st;
  km_stats_get(&st);
  return st;
}
km::Page* page_of(void* p) { return km::page_of(km::segment_of(p), p); }
size_t syscalls() {
  km::os::Counters c = km::os::counters();
  return c.mmap_count + c.munmap_count + c.remap_count;
}
using km_test::in_thread;

TEST(Spans, ABlockAboveTheLargestLaneIsASpanInASegment) {
  in_thread([] {
    km_stats before = stats();
    size_t size = km::kLargestLane + 1;
    auto* p = static_cast<char*>(km_malloc(size));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % km::kSlotSize, 0u) << "spans start on a slot";
    EXPECT_TRUE(km::is_segment(km::segment_of(p)));
    EXPECT_TRUE(page_of(p)->span);
    EXPECT_EQ(km_usable_size(p), (size + 4095) & ~size_t(4095)) << "the request rounded to a page";
    std::memset(p, 7, size);
    km_stats during = stats();
    EXPECT_EQ(during.span_count, before.span_count + 1);
    EXPECT_EQ(during.large_in_use, before.large_in_use + km_usable_size(p));
    km_free(p);
    EXPECT_EQ(stats().large_in_use, before.large_in_use);
    EXPECT_EQ(stats().span_count, before.span_count);
  });
}

TEST(Spans, FreedSlotsCoalesceAndAreReusedFirstFit) {
  in_thread([] {
    // Three 3-slot spans side by side; free the first two: their 6 slots make one free run that a
    // 6-slot span takes, at the first one's address.
    const size_t three = 3 * km::kSlotSize - 4096;   // fits three slots
    char* x = static_cast<char*>(km_malloc(three));
    char* y = static_cast<char*>(km_malloc(three));
    char* z = static_cast<char*>(km_malloc(three));
    ASSERT_TRUE(x && y && z);
    EXPECT_EQ(y, x + 3 * km::kSlotSize);
    EXPECT_EQ(z, y + 3 * km::kSlotSize);
    km_free(x);
    km_free(y);
    char* w = static_cast<char*>(km_malloc(6 * km::kSlotSize - 4096));
    EXPECT_EQ(w, x) << "the two freed runs coalesced and were reused first";
    km_free(w);
    km_free(z);
  });
}

TEST(Spans, ReallocGrowsInPlaceIntoFreeSlotsAndShrinksInPlace) {
  in_thread([] {
    auto* p = static_cast<unsigned char*>(km_malloc(200 << 10));
    ASSERT_NE(p, nullptr);
    for (size_t i = 0; i < (200 << 10); ++i) p[i] = static_cast<unsigned char>(i * 13);
    auto* q = static_cast<unsigned char*>(km_realloc(p, 3 << 20));
    EXPECT_EQ(q, p) << "grew into the free slots after it";
    EXPECT_EQ(km_usable_size(q), size_t(3) << 20);
    for (size_t i = 0; i < (200 << 10); ++i) ASSERT_EQ(q[i], static_cast<unsigned char>(i * 13)) << i;
    // Another span right after it stops growth in place: the block moves, contents kept.
    void* blocker = km_malloc(300 << 10);
    EXPECT_EQ(static_cast<unsigned char*>(blocker), q + (3 << 20));
    auto* r = static_cast<unsigned char*>(km_realloc(q, (3 << 20) + (200 << 10)));
    ASSERT_NE(r, nullptr);
    EXPECT_NE(r, q);
    for (size_t i = 0; i < (200 << 10); ++i) ASSERT_EQ(r[i], static_cast<unsigned char>(i * 13)) << i;
    km_free(blocker);
    // Shrinking by more than half gives the tail slots back, in place.
    auto* s = static_cast<unsigned char*>(km_realloc(r, 300 << 10));
    EXPECT_EQ(s, r);
    EXPECT_EQ(km_usable_size(s), size_t(300) << 10);
    for (size_t i = 0; i < (200 << 10); ++i) ASSERT_EQ(s[i], static_cast<unsigned char>(i * 13)) << i;
    km_free(s);
  });
}

TEST(Spans, FreedSpansArePurgedAfterTheDelayAndByTrim) {
  in_thread([] {
    auto* p = static_cast<char*>(km_malloc(2 << 20));
    std::memset(p, 1, 2 << 20);
    void* keep = km_malloc(200 << 10);   // the segment stays in use
    km_free(p);
    EXPECT_GE(stats().dirty, size_t(2) << 20) << "freed slots wait, resident, for reuse";
    size_t purged = stats().purged;
    km_trim(0);
    EXPECT_GE(stats().purged, purged + (size_t(2) << 20));
    km_free(keep);
  });
}

TEST(Spans, ACrossThreadFreeGoesBackToTheOwner) {
  std::vector<void*> blocks;
  km_stats before = stats();
  std::thread owner([&] {
    for (int i = 0; i < 8; ++i) blocks.push_back(km_malloc(300 << 10));
  });
  owner.join();   // the owner exited: its heap is pooled with the spans
  for (void* p : blocks) {
    ASSERT_TRUE(km_owns(p));
    km_free(p);   // from another thread: remote frees to the pooled heap
  }
  km_trim(0);   // drains the pooled heap's remote frees (the purger does it within the delay)
  EXPECT_EQ(stats().span_count, before.span_count);
  std::thread again([&] {   // the next thread adopts the heap and reuses the slots
    void* p = km_malloc(300 << 10);
    EXPECT_NE(p, nullptr);
    km_free(p);
  });
  again.join();
}

TEST(Spans, CallocOfAReusedSpanIsZero) {
  in_thread([] {
    auto* p = static_cast<unsigned char*>(km_malloc(1 << 20));
    std::memset(p, 0xAB, 1 << 20);
    km_free(p);
    auto* q = static_cast<unsigned char*>(km_calloc(1, 1 << 20));
    EXPECT_EQ(q, p) << "the dirty slots were reused";
    for (size_t i = 0; i < (1 << 20); i += 64) ASSERT_EQ(q[i], 0) << i;
    km_free(q);
  });
}

TEST(Huge, ABlockAboveTheLargestSpanHasAMappingOfItsOwn) {
  size_t size = km::kSpanMax + 1;
  km_stats before = stats();
  auto* p = static_cast<char*>(km_malloc(size));
  ASSERT_NE(p, nullptr);
  EXPECT_GE(km::map_value(p), km::kMapHuge);
  EXPECT_FALSE(km::is_segment(km::segment_of(p)));
  EXPECT_EQ(km_usable_size(p), (size + 4095) & ~size_t(4095));
  std::memset(p, 3, size);
  EXPECT_EQ(stats().huge_count, before.huge_count + 1);
  EXPECT_TRUE(km_owns(p));
  EXPECT_FALSE(km_owns(p + 4096)) << "an interior pointer is not a block";
  km_free(p);
  EXPECT_EQ(stats().huge_count, before.huge_count);
  EXPECT_EQ(stats().large_in_use, before.large_in_use);
}

TEST(Huge, FreedMappingsAreCachedReusedAndPurged) {
  km_trim(0);
  void* p = km_malloc(8 << 20);
  km_free(p);
  EXPECT_GE(stats().large_cached, size_t(8) << 20);
  size_t calls = syscalls();
  void* q = km_malloc((8 << 20) - 8192);   // fits the cached mapping
  EXPECT_EQ(q, p);
  EXPECT_EQ(syscalls(), calls) << "reusing a cached mapping of about the same size is free";
  km_free(q);
  km_trim(0);
  EXPECT_EQ(stats().large_cached, 0u);
}

TEST(Huge, ReallocMovesWithMremapAndKeepsContents) {
  size_t size = 6 << 20;
  auto* p = static_cast<unsigned char*>(km_malloc(size));
  for (size_t i = 0; i < size; i += 4096) p[i] = static_cast<unsigned char>(i >> 12);
  auto* q = static_cast<unsigned char*>(km_realloc(p, 64 << 20));
  ASSERT_NE(q, nullptr);
  for (size_t i = 0; i < size; i += 4096) ASSERT_EQ(q[i], static_cast<unsigned char>(i >> 12)) << i;
  EXPECT_GE(km_usable_size(q), size_t(64) << 20);
  if (q != p) {
    EXPECT_FALSE(km_owns(p)) << "the old address is forgotten";
  }
  auto* r = static_cast<unsigned char*>(km_realloc(q, 100));   // shrinks into a lane
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(km::is_segment(km::segment_of(r)));
  EXPECT_EQ(r[0], 0);
  km_free(r);
}

TEST(Aligned, EveryPowerOfTwoUpTo8MiBWithSizesAroundIt) {
  for (size_t align = 16; align <= (8 << 20); align *= 2) {
    for (size_t size : {size_t(1), align / 2, align - 1, align, align + 1, 3 * align, size_t(200) << 10}) {
      void* p = nullptr;
      ASSERT_EQ(km_posix_memalign(&p, align, size), 0) << align << " " << size;
      ASSERT_EQ(reinterpret_cast<uintptr_t>(p) % align, 0u) << align << " " << size;
      ASSERT_GE(km_usable_size(p), size);
      std::memset(p, 0x5A, size);
      auto* c = static_cast<unsigned char*>(p);
      ASSERT_EQ(c[0], 0x5A);
      ASSERT_EQ(c[size - 1], 0x5A);
      km_free(p);
    }
  }
}

TEST(Aligned, SteadyStateAlignedAllocationsMakeNoSystemCall) {
  km_trim(0);   // earlier tests' cached huge blocks: the purger must have nothing left to unmap
  for (size_t align : {size_t(8192), size_t(65536)}) {
    in_thread([align] {
      std::vector<void*> warm;
      for (int i = 0; i < 64; ++i) {
        void* p;
        ASSERT_EQ(km_posix_memalign(&p, align, 256), 0);
        warm.push_back(p);
      }
      for (void* p : warm) km_free(p);
      size_t calls = syscalls();
      for (int i = 0; i < 20000; ++i) {
        void* p;
        ASSERT_EQ(km_posix_memalign(&p, align, 256), 0);
        ASSERT_EQ(reinterpret_cast<uintptr_t>(p) % align, 0u);
        km_free(p);
      }
      EXPECT_EQ(syscalls(), calls) << "alignment " << align;
    });
  }
}

TEST(Segments, ABurstThatFreesEverythingAndAllocatesAgainMapsNothing) {
  // 16K blocks of 4000-4200 B (about 16 segments), all freed, five times over: after the first
  // round the emptied segments are taken back from the spare pool, with no mmap or munmap.
  in_thread([] {
    std::vector<void*> blocks(16384);
    size_t after_first = 0;
    for (int round = 0; round < 5; ++round) {
      for (size_t i = 0; i < blocks.size(); ++i) {
        blocks[i] = km_malloc(4000 + (i * 37) % 200);
        ASSERT_NE(blocks[i], nullptr);
        static_cast<char*>(blocks[i])[0] = 1;
      }
      for (void* p : blocks) km_free(p);
      km::os::Counters c = km::os::counters();
      if (round == 0) after_first = c.mmap_count + c.munmap_count;
      else EXPECT_EQ(c.mmap_count + c.munmap_count, after_first) << "round " << round;
    }
  });
}

// A page or span set up in purged (or fresh) slots faults its memory in again while dirty ones wait
// in another segment of the heap; the purge then gives those back, and the RSS saws up and down.
TEST(Segments, DirtySlotsOfAnySegmentAreTakenBeforeCleanOnes) {
  in_thread([] {
    constexpr size_t kSlot = km::kSlotSize;
    // Segment A full (40 + 23 slots), then B, the newest (first on the heap's list), with 8 slots
    // used and the rest clean.
    void* x1 = km_malloc(40 * kSlot - 8192);
    void* x2 = km_malloc(23 * kSlot - 8192);
    void* y = km_malloc(8 * kSlot - 8192);
    ASSERT_TRUE(x1 && x2 && y);
    ASSERT_EQ(km::segment_of(x1), km::segment_of(x2)) << "the test needs x1 and x2 in one segment";
    ASSERT_NE(km::segment_of(x1), km::segment_of(y));
    std::memset(x1, 1, 40 * kSlot - 8192);
    km_free(x1);   // 40 dirty slots in A (more than the retiring list keeps)
    void* z = km_malloc(8 * kSlot - 8192);
    EXPECT_EQ(km::segment_of(z), km::segment_of(x2)) << "clean slots taken while dirty ones waited";
    km_free(z);
    km_free(y);
    km_free(x2);
  });
}

TEST(Stats, InUseIsExactAfterCrossThreadFrees) {
  // Another thread allocates; this one frees everything while the owner sits idle, never
  // collecting: "in use" must drop at once (the cells are free for the program), and "resident"
  // is kmalloc's own, never above what it maps.
  km_stats before = stats();
  std::vector<void*> blocks;
  std::atomic<bool> allocated{false}, freed{false};
  std::thread owner([&] {
    for (int i = 0; i < 5000; ++i) blocks.push_back(km_malloc(100));
    blocks.push_back(km_malloc(300 << 10));   // a span too
    allocated.store(true, std::memory_order_release);   // the blocks (and their pages) are handed over
    while (!freed.load(std::memory_order_acquire)) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  while (!allocated.load(std::memory_order_acquire)) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  km_stats during = stats();
  EXPECT_GE(during.in_use, before.in_use + 5000 * 112 + (300 << 10));
  for (void* p : blocks) km_free(p);
  km_stats after = stats();
  EXPECT_LE(after.in_use, before.in_use + 4096) << "cells freed across threads still counted";
  EXPECT_LE(after.resident, after.mapped);
  freed.store(true, std::memory_order_release);
  owner.join();
  km_trim(0);   // the cells this thread kept for reuse go home (foreign.h)
  EXPECT_EQ(km::foreign_bytes(km::tl_heap), 0u) << "trim hands kept foreign cells back";
}

// The purger drains an exited thread's heap (thousands of cells freed into it by a thread that has
// exited too) while this thread reads the stats: a collection moves each cell from "freed, pending"
// to its page's free cells in two steps, and a read that overlapped it counted cells twice or not at
// all (Stats.CountInUseBytesExactly failed in shuffled orders). Nothing here allocates or frees
// meanwhile, so every read must give the same "in use".
TEST(Stats, InUseStaysExactWhileThePurgerDrainsAnExitedHeap) {
  km_trim(0);
  const size_t base = stats().in_use;
  size_t reads = 0, overlapped = 0;
  for (int round = 0; round < 12; ++round) {
    std::vector<void*> blocks;
    std::thread([&] {
      for (int i = 0; i < 20000; ++i) blocks.push_back(km_malloc(100));
    }).join();   // its heap goes to the pool, holding the cells
    std::thread([&] {
      for (void* p : blocks) km_free(p);   // remote frees: sent home at the latest when it exits
    }).join();
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
    for (bool drained = false; !drained && std::chrono::steady_clock::now() < until;) {
      km_stats st = stats();
      ++reads;
      ASSERT_EQ(st.in_use, base) << "round " << round << ", read " << reads << ", "
                                 << km::heaps_remote_pending() << " bytes pending";
      drained = km::heaps_remote_pending() == 0;
      overlapped += !drained;
    }
  }
  EXPECT_GT(overlapped, 0u) << "no read overlapped a drain: the test tested nothing";
}

// A thread whose heap reads as collecting its remote frees (collect_seq odd, as collect_remote_slice
// leaves it while it runs) until the object is destroyed.
class Collecting {
 public:
  Collecting() : thread_([this] {
      km_free(km_malloc(64));   // this thread's heap
      km::Heap* h = km::tl_heap;
      __atomic_store_n(&h->collect_seq, h->collect_seq + 1, __ATOMIC_RELEASE);
      marked_.store(true);
      while (!done_.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      __atomic_store_n(&h->collect_seq, h->collect_seq + 1, __ATOMIC_RELEASE);
    }) {
    while (!marked_.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~Collecting() {
    done_.store(true);
    thread_.join();
  }

 private:
  std::atomic<bool> marked_{false}, done_{false};
  std::thread thread_;
};

// Two heaps collecting at once (their collect_seq both odd) still read as "under way": stats must not
// take a snapshot then (the two odd marks once added up to an even sum).
TEST(Stats, TwoCollectionsUnderWayReadAsUnderWay) {
  Collecting a, b;
  EXPECT_TRUE(km::heaps_collect_seq() >> 63);
}

// A thread was collecting its remote frees when another thread forked: in the child that thread does
// not exist and its heap's collect_seq stays odd. The child's stats must not wait for it.
TEST(Stats, AForkChildDoesNotWaitForACollectionItsParentHadUnderWay) {
  Collecting collector;
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto t0 = std::chrono::steady_clock::now();
    km_stats st;
    km_stats_get(&st);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
    _exit(ms.count() < 50 ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the child's stats waited for a collection";
}

TEST(Faults, ASpanThatNeedsANewSegmentFailsCleanlyAndLeaksNothing) {
  in_thread([] {
    km_stats before = stats();
    km::os::inject_failure(km::os::Fault::map, 1);
    errno = 0;
    void* p = km_malloc(1 << 20);   // a fresh heap: the span needs a segment
    km::os::inject_failure(km::os::Fault::map, 0);
    if (p == nullptr) {
      EXPECT_EQ(errno, ENOMEM);
    } else {
      km_free(p);   // a spare segment served it without a map
    }
    EXPECT_EQ(stats().large_in_use, before.large_in_use);
    EXPECT_EQ(stats().span_count, before.span_count);
    p = km_malloc(1 << 20);
    EXPECT_NE(p, nullptr);
    km_free(p);
  });
}

TEST(Faults, AHugeBlockWhoseMapFailsLeaksNothing) {
  km_trim(0);
  km_stats before = stats();
  km::os::inject_failure(km::os::Fault::map, 1);
  errno = 0;
  void* p = km_malloc(16 << 20);
  km::os::inject_failure(km::os::Fault::map, 0);
  EXPECT_EQ(p, nullptr);
  EXPECT_EQ(errno, ENOMEM);
  km_stats after = stats();
  EXPECT_EQ(after.huge_count, before.huge_count);
  EXPECT_EQ(after.mapped, before.mapped);
}

}  // namespace
