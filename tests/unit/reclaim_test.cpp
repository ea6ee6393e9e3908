// Memory of exited threads is reused by running threads (heap_reclaim), and frees that raced with
// the move are forwarded to the new owner.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "kmalloc.h"

namespace {
km_stats stats() {
  km_stats st;
  km_stats_get(&st);
  return st;
}

TEST(Reclaim, ARunningThreadReusesThePagesOfAnExitedOne) {
  // A worker leaves 1 cell in 64 live and exits; a running thread then allocates as many cells:
  // they come from the worker's pages, so the segments mapped barely grow.
  constexpr int kN = 200000;
  std::vector<void*> survivors;
  std::atomic<bool> worker_done{false};
  // The runner exists (with a heap of its own) before the worker exits: a new thread would simply
  // adopt the pooled heap whole; this is about a running one.
  std::thread runner([&] {
    void* first = km_malloc(100);
    while (!worker_done.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    size_t before = stats().segments;
    std::vector<void*> mine(kN);
    for (int i = 0; i < kN; ++i) {
      mine[i] = km_malloc(100);
      ASSERT_NE(mine[i], nullptr);
      std::memset(mine[i], 2, 100);
    }
    size_t after = stats().segments;
    // 200,000 cells of 112 B are about 6 segments; reusing the worker's pages needs at most one more.
    EXPECT_LE(after, before + 1) << "the exited thread's pages were not reused";
    for (void* p : mine) km_free(p);
    km_free(first);
  });
  std::thread worker([&] {
    std::vector<void*> all(kN);
    for (int i = 0; i < kN; ++i) all[i] = km_malloc(100);
    for (int i = 0; i < kN; ++i) {
      if (i % 64 == 0) survivors.push_back(all[i]);
      else km_free(all[i]);
    }
  });
  worker.join();
  worker_done = true;
  runner.join();
  for (void* p : survivors) {
    EXPECT_TRUE(km_owns(p));
    km_free(p);
  }
}
}  // namespace
