// fresh_heaps.h — test isolation from the heaps earlier tests' threads left behind.
//
// An exited thread's heap is pooled with the pages that still hold its cells; a new thread's first
// slow paths adopt those pages (heap_reclaim). A test that counts pages, slots or cells of a new
// thread would then depend on which tests ran before it (--gtest_shuffle).
#pragma once
#include <thread>
#include <vector>

#include "core/heap.h"
#include "core/pool.h"
#include "kmalloc.h"

namespace km_test {

// While it lives, the pooled heaps that own memory are set aside (no thread adopts their pages, the
// purger does not drain them), and spare segments have been given back.
class FreshHeaps {
 public:
  FreshHeaps() {
    while (km::Heap* h = km::pool_take_owning()) aside_.push_back(h);
    km_trim(0);   // no spare segment with dirty slots, which would be taken first, is left
  }
  ~FreshHeaps() {
    for (km::Heap* h : aside_) km::pool_put(h, true);
  }
  FreshHeaps(const FreshHeaps&) = delete;
  FreshHeaps& operator=(const FreshHeaps&) = delete;

 private:
  std::vector<km::Heap*> aside_;
};

// Run f in a new thread whose heap starts empty: slot positions and page counts are predictable
// whatever ran before.
template <class F> void in_thread(F f) {
  FreshHeaps fresh;
  std::thread(f).join();
}

}  // namespace km_test
