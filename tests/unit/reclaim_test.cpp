// Memory of exited threads is reused by running threads (heap_reclaim), and frees that raced with
// the move are forwarded to the new owner.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "core/heap.h"
#include "fresh_heaps.h"
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

namespace {
// A running thread that needs one block of a lane takes one segment of an exited thread's heap, not
// all of it: the rest stays pooled (drained by the purger, adopted when needed), so a thread that
// allocates once and then idles does not become the owner of every cell the exited thread left.
TEST(Reclaim, OneBlockAdoptsOneSegmentNotTheWholeHeap) {
  constexpr int kN = 400000;   // 100 B cells: about 11 segments
  std::vector<void*> survivors;
  std::thread([&] {
    std::vector<void*> all(kN);
    for (auto& p : all) p = km_malloc(100);
    for (int i = 0; i < kN; ++i)
      if (i % 64) km_free(all[i]);
      else survivors.push_back(all[i]);
  }).join();
  // A fresh thread allocates one block of the lane, then frees every survivor: the survivors'
  // segments other than the one it adopted are not its own, so their frees are not local.
  km_stats before = stats();
  size_t own = 0;
  std::thread([&] {
    void* p = km_malloc(100);
    for (void* s : survivors)
      own += reinterpret_cast<uintptr_t>(s) >> 22 == reinterpret_cast<uintptr_t>(p) >> 22;
    km_free(p);
  }).join();
  km_stats after = stats();
  EXPECT_LE(after.segments, before.segments);   // nothing new mapped for one block
  EXPECT_LT(own, survivors.size() / 4) << "the one block came with most of the exited heap";
  for (void* s : survivors) km_free(s);
}

// free's fast path takes a page as its own when the page's owner word is the calling thread's pointer
// (Heap::owner_id). glibc gives a joined thread's stack, and so its thread pointer, to the next thread
// it starts: the exited thread's pages must not be that thread's. Its frees of them go to the pooled
// heap; a local push would put the cells on a page of a heap it does not run, and an emptied page on
// its own lists. Set aside (FreshHeaps), so that the first thread's heap stays pooled with its pages.
TEST(Reclaim, AThreadThatGetsAnExitedThreadsPointerDoesNotOwnItsPages) {
  km_test::FreshHeaps fresh;
  constexpr int kN = 4096;
  std::vector<void*> cells(kN);
  uintptr_t first_id = 0, second_id = 0;
  std::thread([&] {
    first_id = km::thread_owner_id();
    for (auto& p : cells) {
      p = km_malloc(100);
      std::memset(p, 7, 100);
    }
  }).join();
  size_t owned = 0;
  std::thread([&] {
    second_id = km::thread_owner_id();
    for (void* p : cells)
      owned += km::page_owner_is(km::page_of(km::segment_of(p), p), km::thread_owner_id());
    for (void* p : cells) km_free(p);   // none may be pushed as this thread's own
  }).join();
  if (first_id != second_id) GTEST_SKIP() << "the C library gave the second thread another stack";
  EXPECT_EQ(owned, 0u) << "a new thread took an exited thread's pages for its own";
  // The frees reached the pooled heap: its pages take new cells as before.
  std::vector<void*> again(kN);
  for (auto& p : again) {
    p = km_malloc(100);
    ASSERT_NE(p, nullptr);
    std::memset(p, 9, 100);
  }
  for (void* p : again) km_free(p);
}

// The same in a fork child: the parent's other threads do not exist there, and the child's C library
// gives their stacks (and thread pointers) to the threads the child starts.
TEST(Reclaim, AForkChildsThreadDoesNotOwnThePagesOfTheParentsOtherThreads) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer cannot start threads in the child of a multithreaded fork";
#endif
  constexpr int kN = 4096;
  static void* cells[kN];
  static uintptr_t worker_id = 0;
  std::atomic<int> stage{0};
  std::thread worker([&] {
    worker_id = km::thread_owner_id();
    for (auto& p : cells) p = km_malloc(100);
    stage = 1;
    while (stage.load() != 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  while (stage.load() != 1) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    static size_t owned = 0;
    static uintptr_t id = 0;
    std::thread([] {
      id = km::thread_owner_id();
      for (void* p : cells) owned += km::page_owner_is(km::page_of(km::segment_of(p), p), id);
      for (void* p : cells) km_free(p);
    }).join();
    _exit(id != worker_id ? 2 : owned == 0 ? 0 : 1);
  }
  stage = 2;
  worker.join();
  for (void* p : cells) km_free(p);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 2) GTEST_SKIP() << "the child's thread got another stack";
  EXPECT_EQ(WEXITSTATUS(status), 0) << "a child's thread took the pages of a parent's thread for its own";
}

// Frees into the heap of an exited thread, by a thread that never allocates, come back within the
// purge delay with no other allocator call: the free starts the purger, which drains the pooled heap
// and gives its emptied pages back. In a fork child, where no purger runs yet.
TEST(Reclaim, FreesIntoAnExitedHeapComeBackWithoutAnotherAllocation) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer cannot start threads in the child of a multithreaded fork";
#endif
  pid_t pid = fork();   // a plain fork (the atfork handlers run): the child has no purger yet
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    constexpr int kN = 100000;   // 100 B cells: about 11 MiB of pages
    static void* blocks[kN];
    std::thread([] {
      for (auto& p : blocks) p = km_malloc(100);
    }).join();
    size_t before = stats().resident;
    std::thread([] {
      for (void* p : blocks) km_free(p);
    }).join();
    size_t after = before;
    for (int i = 0; i < 300 && after + (8u << 20) > before; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      after = stats().resident;
    }
    _exit(after + (8u << 20) <= before ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "resident did not fall by 8 MiB within 3 s";
}
}  // namespace
