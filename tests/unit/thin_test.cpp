// Thinning (thin.h): a sparse lane page gives its free OS pages back, and takes them again when
// the lane needs cells; live cells are never touched.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <thread>
#include <vector>

#include "core/heap.h"
#include "core/segment.h"
#include "core/thin.h"
#include "fresh_heaps.h"
#include "kmalloc.h"
#include "platform/os.h"

namespace {

TEST(Thin, ASparsePageGivesItsFreeOsPagesBackAndTakesThemAgain) {
  km_test::in_thread([] {   // a page of its own, not one adopted from an earlier test's exited thread
    // Cells of 256 B: 256 to a 64 KiB page, 16 to an OS page. Fill 4 pages, keep one cell in 64
    // (one per 4 OS pages), free the rest.
    constexpr size_t kCell = 256;
    std::vector<unsigned char*> all;
    for (int i = 0; i < 4 * 256 + 8; ++i) all.push_back(static_cast<unsigned char*>(km_malloc(kCell)));
    km::Page* first = km::page_of(km::segment_of(all[0]), all[0]);
    std::vector<unsigned char*> kept;
    for (size_t i = 0; i < all.size(); ++i) {
      if (i % 64 == 0) {
        std::memset(all[i], int(i & 0x7f) + 1, kCell);
        kept.push_back(all[i]);
      } else {
        km_free(all[i]);
      }
    }
    size_t before = km::os::resident_in(first->start, km::kSlotSize);
    EXPECT_EQ(before, km::kSlotSize) << "the page was written whole";
    km_trim(0);   // thins at once
    size_t after = km::os::resident_in(first->start, km::kSlotSize);
    EXPECT_LE(after, km::kSlotSize / 4 + 4096) << "free OS pages of a sparse page were not given back";
    EXPECT_GT(first->dropped, 0u);
    for (unsigned char* p : kept) {
      EXPECT_TRUE(km_owns(p));
      EXPECT_EQ(p[0], p[kCell - 1]) << "a live cell was damaged";
    }
    // The lane needs cells again: every dropped cell comes back, distinct, and usable.
    std::vector<unsigned char*> again;
    for (int i = 0; i < 4 * 256; ++i) {
      auto* p = static_cast<unsigned char*>(km_malloc(kCell));
      ASSERT_NE(p, nullptr);
      std::memset(p, 0xEE, kCell);
      again.push_back(p);
    }
    for (unsigned char* p : kept) EXPECT_NE(p[0], 0xEE) << "a live cell was handed out again";
    for (unsigned char* p : again) km_free(p);
    for (unsigned char* p : kept) km_free(p);
  });
}

// Sparse pages of 256-byte cells (16 to an OS page) in a thread of their own, the cells i with
// keep(i) kept and the rest freed; f gets the first page (not its lane's current page), the kept
// cells are freed after. The thinning passes are the test's own: none runs inside the slow paths
// here (every 64th, once the delay has passed since the heap's last), or whether `first` was
// refilled "since the last pass" would depend on where the heap's tick count stood. (Not a longer
// purge delay: the purger thread would sleep on it.)
template <class Keep, class F>
void with_sparse_page(Keep keep, F f) {
  km_test::in_thread([&] {
    km_free(km_malloc(16));   // the heap is set up (another lane)
    km::tl_heap->thin_ms = INT64_MAX / 2;   // no periodic pass inside the mallocs below
    std::vector<void*> all, kept;
    for (int i = 0; i < 4 * 256 + 8; ++i) all.push_back(km_malloc(256));
    km::Page* first = km::page_of(km::segment_of(all[0]), all[0]);
    for (size_t i = 0; i < all.size(); ++i) {
      if (keep(i)) kept.push_back(all[i]);
      else km_free(all[i]);
    }
    ASSERT_NE(km::tl_heap->lane_page[first->lane], first) << "the test needs a page that is not current";
    f(first, kept);
    for (void* p : kept) km_free(p);
    km::tl_heap->thin_ms = 0;   // the heap goes to the pool: its next thread thins as usual
  });
}

// The periodic pass leaves alone a sparse page malloc refilled from since the last pass (its free
// cells are in the lane's rotation: purging them costs a fault per OS page when they are handed out
// again), and thins it the pass after if malloc has not come back to it.
TEST(Thin, ThePeriodicPassSkipsAPageRefilledFromSinceTheLastPass) {
  with_sparse_page([](size_t i) { return i % 64 == 0; }, [](km::Page* first, std::vector<void*>&) {
    km::Heap* h = km::tl_heap;
    ASSERT_TRUE(km::page_thin_candidate(first));
    // malloc refilled from `first` while the first 256 cells were handed out: this pass skips it.
    km::heap_thin(h, false);
    EXPECT_EQ(first->dropped, 0u) << "a page in the lane's rotation was thinned";
    EXPECT_EQ(km::os::resident_in(first->start, km::kSlotSize), km::kSlotSize);
    // Nothing was taken from it since: the next pass thins it.
    km::heap_thin(h, false);
    EXPECT_GT(first->dropped, 0u);
    EXPECT_LE(km::os::resident_in(first->start, km::kSlotSize), km::kSlotSize / 4 + 4096);
  });
}

// Each run of free OS pages costs a system call, and with other threads running a TLB shootdown:
// page_thin gives back runs of at least min_run OS pages (heap_thin asks for 2 when more than one
// heap is live, else 1).
TEST(Thin, RunsShorterThanTheMinimumStay) {
  with_sparse_page([](size_t i) { return i % 32 == 0; }, [](km::Page* first, std::vector<void*>&) {
    // One live cell every other OS page: every free run is one OS page long.
    EXPECT_EQ(km::page_thin(first, 2), 0u);
    EXPECT_EQ(first->dropped, 0u);
    EXPECT_EQ(km::os::resident_in(first->start, km::kSlotSize), km::kSlotSize);
    EXPECT_EQ(km::page_thin(first, 1), km::kSlotSize / 2);
    EXPECT_GT(first->dropped, 0u);
  });
}

// A pass that finds nothing to give back (a survivor in every OS page) is not repeated until half
// of those survivors have gone: a walk of the free lists costs a cache miss per free cell.
TEST(Thin, AFruitlessPassWaitsForHalfTheSurvivorsToGo) {
  with_sparse_page([](size_t i) { return i % 16 == 0; }, [](km::Page* first, std::vector<void*>& kept) {
    ASSERT_TRUE(km::page_thin_candidate(first));
    EXPECT_EQ(km::page_thin(first, 1), 0u);
    EXPECT_FALSE(km::page_thin_candidate(first));
    // Free the first page's survivors, a third of them, then a half.
    std::vector<void*> mine;
    for (void* p : kept)
      if (km::page_of(km::segment_of(p), p) == first) mine.push_back(p);
    ASSERT_EQ(mine.size(), 16u);
    auto free_some = [&](size_t n) {
      for (size_t j = 0; j < n; ++j) {
        km_free(mine.back());
        kept.erase(std::find(kept.begin(), kept.end(), mine.back()));
        mine.pop_back();
      }
    };
    free_some(6);   // 10 of 16 left: a quarter gone, not half
    EXPECT_FALSE(km::page_thin_candidate(first)) << "walked again after a quarter";
    free_some(2);   // 8 of 16
    EXPECT_TRUE(km::page_thin_candidate(first));
    EXPECT_GT(km::page_thin(first, 1), 0u);
  });
}

}  // namespace
