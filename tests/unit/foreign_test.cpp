// A thread that frees other threads' cells keeps a few for its own next mallocs of the size
// (core/foreign.h): reused warm, free for the program ("in use"), bounded, and sent to their owners
// on overflow, trim and exit; a second free of a kept cell is still caught.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "core/foreign.h"
#include "core/heap.h"
#include "kmalloc.h"

namespace {
km_stats stats() {
  km_stats st;
  km_stats_get(&st);
  return st;
}

std::vector<void*> cells(int n, size_t size) {
  std::vector<void*> v;
  for (int i = 0; i < n; ++i) v.push_back(km_malloc(size));
  return v;
}

km::Page* page_of(void* p) { return km::page_of(km::segment_of(p), p); }

bool contains(const std::vector<void*>& v, void* p) { return std::find(v.begin(), v.end(), p) != v.end(); }

// Runs body(theirs) on a second thread that has a 64-byte page of its own; `theirs` are 64-byte cells
// of the calling thread's heap, which stays alive (it waits in join).
template <class F>
void free_on_other_thread(int n, F body) {
  std::thread([&] {
    std::vector<void*> theirs = cells(n, 64);
    std::thread([&] {
      km_free(km_malloc(64));   // this thread allocates the size: it keeps what it frees
      body(theirs);
    }).join();
    km_trim(0);
  }).join();
}

TEST(Foreign, AFreedCellOfAnotherThreadIsHandedOutAgainByTheThreadThatFreedIt) {
  free_on_other_thread(3, [](std::vector<void*>& theirs) {
    km::Page* pg = page_of(theirs[0]);
    uint32_t owner_used = pg->used;
    km_stats before = stats();
    for (void* p : theirs) km_free(p);
    EXPECT_EQ(before.in_use - stats().in_use, 3 * pg->cell_size) << "a kept cell is free for the program";
    EXPECT_EQ(pg->used, owner_used) << "for its owner the cell is still out until it comes back";
    EXPECT_FALSE(km::remote_waiting(page_heap(pg)));
    // Last in, first out, through malloc's fast path.
    EXPECT_EQ(km_malloc(64), theirs[2]);
    EXPECT_EQ(km_malloc(64), theirs[1]);
    EXPECT_EQ(km_malloc(64), theirs[0]);
    void* mine = km_malloc(64);   // none kept now: the thread's own page again
    EXPECT_FALSE(contains(theirs, mine));
    EXPECT_NE(page_of(mine), pg);
    EXPECT_EQ(km::foreign_bytes(km::tl_heap), 0u);
    for (void* p : theirs) km_free(p);   // kept again; the thread's exit sends them home
    km_free(mine);
  });
}

TEST(Foreign, KeptCellsAreBoundedAndTheOlderOnesGoHome) {
  const uint32_t limit = km::foreign_limit(km::lane_of(64));
  free_on_other_thread(int(limit) + 1, [&](std::vector<void*>& theirs) {
    km::Heap* owner = page_heap(page_of(theirs[0]));
    for (uint32_t i = 0; i < limit; ++i) km_free(theirs[i]);
    EXPECT_EQ(km::foreign_bytes(km::tl_heap), size_t(limit) * 64);
    km_free(theirs[limit]);   // one more: the `limit` older ones leave, this one stays
    EXPECT_EQ(km::foreign_bytes(km::tl_heap), 64u);
    km::remote_batch_flush(&km::tl_heap->outgoing);
    EXPECT_TRUE(km::remote_waiting(owner)) << "the older kept cells went to their owner";
    EXPECT_EQ(km_malloc(64), theirs[limit]);
    km_free(theirs[limit]);
  });
}

TEST(Foreign, AThreadThatNeverAllocatesTheSizeSendsItsFreesStraightBack) {
  std::thread([] {
    std::vector<void*> theirs = cells(3, 64);
    std::thread([&] {
      km_free(km_malloc(4000));   // a heap, but no 64-byte cells of its own
      for (void* p : theirs) km_free(p);
      EXPECT_EQ(km::foreign_bytes(km::tl_heap), 0u);
      EXPECT_EQ(km::tl_heap->outgoing.used, 1u) << "they wait in the batch for their owner";
    }).join();
    km_trim(0);
  }).join();
}

TEST(Foreign, TrimAndExitSendKeptCellsToTheirOwner) {
  std::thread([] {
    std::vector<void*> theirs = cells(4, 64);
    km::Heap* me = km::tl_heap;
    km::Page* pg = page_of(theirs[0]);
    uint32_t used = pg->used;
    std::thread([&] {
      km_free(km_malloc(64));
      km_free(theirs[0]);
      km_free(theirs[1]);
      km_trim(0);
      EXPECT_EQ(km::foreign_bytes(km::tl_heap), 0u);
      km_free(theirs[2]);
      km_free(theirs[3]);   // kept until this thread exits
    }).join();
    km::collect_remote(me);
    EXPECT_EQ(pg->used + 4, used) << "all four are the owner's again";
  }).join();
}

TEST(Foreign, ASecondFreeOfAKeptCellStopsTheProgram) {
  // The statement starts threads: run it in a fresh process (ThreadSanitizer cannot start threads
  // in the forked child of a multithreaded process, which the default style gives).
  std::string style = GTEST_FLAG_GET(death_test_style);
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(free_on_other_thread(1, [](std::vector<void*>& theirs) {
                 km_free(theirs[0]);
                 km_free(theirs[0]);
               }),
               "double free");
  GTEST_FLAG_SET(death_test_style, style);
}

TEST(Foreign, AForkChildNeverHandsOutAKeptCellTwice) {
  free_on_other_thread(3, [](std::vector<void*>& theirs) {
    for (void* p : theirs) km_free(p);
    pid_t pid = fork();
    if (pid == 0) {
      // The child dropped what the parent kept: its mallocs come from its own pages, distinct.
      std::vector<void*> got = cells(200, 64);
      bool ok = km::foreign_bytes(km::tl_heap) == 0;
      for (void* p : got) ok &= !contains(theirs, p);
      std::sort(got.begin(), got.end());
      ok &= std::adjacent_find(got.begin(), got.end()) == got.end();
      _exit(ok ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    EXPECT_EQ(km_malloc(64), theirs[2]) << "the parent keeps its cells";
    km_free(theirs[2]);
  });
}

}  // namespace
