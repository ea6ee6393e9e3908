// Cross-thread frees go to their owners in batches (core/remote.h): what a batch holds is free for
// the program at once ("in use"), and it reaches the owner at its bounds, on the freeing thread's slow
// paths and when that thread exits.
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "core/heap.h"
#include "kmalloc.h"

namespace {
km_stats stats() {
  km_stats st;
  km_stats_get(&st);
  return st;
}

// Runs f on a new thread (a fresh heap of its own, nothing pending from earlier tests).
template <class F>
void in_thread(F f) {
  std::thread(f).join();
}

std::vector<void*> cells(int n, size_t size) {
  std::vector<void*> v;
  for (int i = 0; i < n; ++i) v.push_back(km_malloc(size));
  return v;
}

km::Page* page_of(void* p) { return km::page_of(km::segment_of(p), p); }

TEST(RemoteBatch, CellsFreedByAThreadThatThenExitsReachTheOwner) {
  in_thread([] {
    std::vector<void*> v = cells(8, 64);   // fewer than a batch's bound: only the exit sends them
    km::Heap* me = km::tl_heap;
    km::Page* pg = page_of(v[0]);
    uint32_t used = pg->used;
    std::thread([&] {
      // A heap of its own that hands out no 64-byte cell: its frees of ours are batched (a thread
      // that allocates that size keeps a few for itself, foreign.h).
      km_free(km_malloc(4000));
      for (void* p : v) km_free(p);
    }).join();
    EXPECT_TRUE(km::remote_waiting(me)) << "the exited thread's batch never reached the owner";
    km::collect_remote(me);
    EXPECT_EQ(pg->used + 8, used) << "the cells are the owner's to reuse";
  });
}

TEST(RemoteBatch, InUseIsExactWhileABatchIsPending) {
  in_thread([] {
    km_free(km_malloc(64));
    km::Heap* me = km::tl_heap;
    std::vector<void*> v = cells(20, 64);
    std::thread([&] {
      km_free(km_malloc(4000));   // no 64-byte cells of its own (see above)
      km_stats before = stats();
      for (void* p : v) km_free(p);
      EXPECT_EQ(km::tl_heap->outgoing.used, 1u) << "the cells wait in this thread's batch";
      EXPECT_FALSE(km::remote_pending(&me->remote));
      km_stats after = stats();
      EXPECT_EQ(before.in_use - after.in_use, 20u * page_of(v[0])->cell_size) << "a batched cell is free for the program";
    }).join();
    km_stats st = stats();
    km::collect_remote(me);
    EXPECT_EQ(stats().in_use, st.in_use) << "collecting changes nothing the program sees";
  });
}

TEST(RemoteBatch, AFullBatchGoesOverWhileItsThreadRuns) {
  in_thread([] {
    km_free(km_malloc(64));
    km::Heap* me = km::tl_heap;
    std::vector<void*> v = cells(int(km::RemoteBatch::kCells), 64);
    void* big = km_malloc(300 << 10);   // a span: over the byte bound alone
    std::thread([&] {
      km_free(km_malloc(4000));   // no 64-byte cells of its own (see above)
      for (int i = 0; i + 1 < int(v.size()); ++i) km_free(v[i]);
      EXPECT_FALSE(km::remote_pending(&me->remote));
      km_free(v.back());   // the 64th: the batch goes
      EXPECT_TRUE(km::remote_pending(&me->remote));
      km::collect_remote(me);   // (safe here: the owner thread waits in join)
      km_free(big);
      EXPECT_TRUE(km::remote_pending(&me->remote)) << "a large cell goes at once";
      EXPECT_EQ(km::tl_heap->outgoing.used, 0u);
    }).join();
  });
}

TEST(RemoteBatch, TheFreeingThreadsSlowPathSendsItsBatch) {
  in_thread([] {
    km_free(km_malloc(64));
    km::Heap* me = km::tl_heap;
    std::vector<void*> v = cells(3, 64);
    std::thread([&] {
      km_free(km_malloc(4000));   // no 64-byte cells of its own (see above)
      for (void* p : v) km_free(p);
      EXPECT_FALSE(km::remote_pending(&me->remote));
      void* q = km_malloc(3000);   // a lane this thread has not used: a slow path
      EXPECT_TRUE(km::remote_pending(&me->remote));
      km_free(q);
    }).join();
  });
}

TEST(RemoteBatch, MoreOwnersThanSlotsSendTheOldest) {
  constexpr int kOwners = int(km::RemoteBatch::kOwners) + 2;
  std::vector<std::vector<void*>> v(kOwners);
  std::vector<std::thread> owners;
  for (int i = 0; i < kOwners; ++i) owners.emplace_back([&v, i] { v[i] = cells(2, 64); });
  for (auto& t : owners) t.join();   // their heaps are pooled with the cells
  in_thread([&] {
    km_free(km_malloc(64));
    km_stats before = stats();
    for (auto& c : v)
      for (void* p : c) km_free(p);
    EXPECT_LE(km::tl_heap->outgoing.used, km::RemoteBatch::kOwners);
    EXPECT_EQ(before.in_use - stats().in_use, size_t(kOwners) * 2 * page_of(v[0][0])->cell_size);
  });
  km_trim(0);   // the pooled heaps' frees are drained
}

}  // namespace
