// The purger gives back what other threads free into the heap of an idle thread (core/sink.h): the OS
// pages on which every cell was freed come back to the OS within a few purge delays while the owner
// stays blocked, and the owner then finds its cells as it left them and reuses the rest.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <unistd.h>
#include <vector>

#include "core/heap.h"
#include "core/options.h"
#include "core/sink.h"
#include "fresh_heaps.h"
#include "kmalloc.h"
#include "platform/os.h"

namespace {

constexpr size_t kCell = 256;
constexpr int kCells = 64 * 1024;   // 16 MiB of cells, 16 to an OS page
constexpr int kKeepEvery = 64;      // one survivor in 64 cells: three OS pages in four hold none

bool stamped(const void* p, unsigned char v) {
  auto* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < kCell; ++i)
    if (b[i] != v) return false;
  return true;
}

// A thread that allocates, hands its cells to another thread to free, and blocks until released.
class IdleOwner {
 public:
  IdleOwner() : thread_([this] { run(); }) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [this] { return allocated_; });
  }
  ~IdleOwner() { finish(); }
  // Free every cell but the survivors from another thread, which then exits.
  void free_all_but_survivors() {
    std::thread([this] {
      for (int i = 0; i < kCells; ++i)
        if (i % kKeepEvery != 0) km_free(cells_[size_t(i)]);
    }).join();
  }
  // Resident bytes of the OS pages the cells are on (in runs: the segments need not be adjacent).
  size_t resident() const {
    std::vector<uintptr_t> pages;
    for (char* p : cells_) pages.push_back(reinterpret_cast<uintptr_t>(p) & ~uintptr_t(4095));
    std::sort(pages.begin(), pages.end());
    pages.erase(std::unique(pages.begin(), pages.end()), pages.end());
    size_t resident = 0;
    for (size_t i = 0; i < pages.size();) {
      size_t j = i + 1;
      while (j < pages.size() && pages[j] == pages[j - 1] + 4096) ++j;
      resident += km::os::resident_in(reinterpret_cast<void*>(pages[i]), (j - i) * 4096);
      i = j;
    }
    return resident;
  }
  // Wake the owner and wait for it: it checks its survivors, allocates as much again (counting the
  // new cells that land where the freed ones were), checks again and frees everything.
  void finish() {
    {
      std::lock_guard<std::mutex> l(mu_);
      released_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  bool intact() const { return intact_; }
  int reused() const { return reused_; }
  km::Heap* heap() const { return heap_; }
  void* cell(int i) const { return cells_[size_t(i)]; }

 private:
  void run() {
    for (int i = 0; i < kCells; ++i) {
      auto* p = static_cast<char*>(km_malloc(kCell));
      std::memset(p, 0x5a, kCell);
      cells_.push_back(p);
      lo_ = lo_ && lo_ < p ? lo_ : p;
      hi_ = hi_ > p + kCell ? hi_ : p + kCell;
    }
    heap_ = km::tl_heap;
    std::unique_lock<std::mutex> l(mu_);
    allocated_ = true;
    cv_.notify_all();
    cv_.wait(l, [this] { return released_; });   // idle: no allocator call until released
    l.unlock();
    bool ok = true;
    for (int i = 0; i < kCells; i += kKeepEvery) ok &= stamped(cells_[size_t(i)], 0x5a);
    std::vector<char*> again;
    for (int i = 0; i < kCells; ++i) {
      auto* p = static_cast<char*>(km_malloc(kCell));
      std::memset(p, 0xa5, kCell);
      again.push_back(p);
      reused_ += p >= lo_ && p < hi_;
    }
    for (int i = 0; i < kCells; i += kKeepEvery) ok &= stamped(cells_[size_t(i)], 0x5a);
    for (char* p : again) ok &= stamped(p, 0xa5);
    for (char* p : again) km_free(p);
    for (int i = 0; i < kCells; i += kKeepEvery) km_free(cells_[size_t(i)]);
    intact_ = ok;
  }

  std::vector<char*> cells_;
  char* lo_ = nullptr;
  char* hi_ = nullptr;
  km::Heap* heap_ = nullptr;
  bool intact_ = false;
  int reused_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  bool allocated_ = false;
  bool released_ = false;
  std::thread thread_;   // last: starts once the rest is set up
};

km_stats stats() {
  km_stats st;
  km_stats_get(&st);
  return st;
}

// Polls for up to 3 s (the purge delay is 10 ms; a sink sorts the cells first).
template <class F> bool within_seconds(F done) {
  for (int i = 0; i < 300; ++i) {
    if (done()) return true;
    usleep(10 * 1000);
  }
  return done();
}

TEST(Sink, AnIdleOwnersRemoteFreesComeBackWithoutIt) {
  km_test::FreshHeaps fresh;   // the owner's pages are its own, not adopted from earlier tests
  IdleOwner owner;
  size_t full = owner.resident();
  ASSERT_GE(full, size_t(15) << 20);
  owner.free_all_but_survivors();
  EXPECT_TRUE(within_seconds([&] { return owner.resident() * 2 < full; }))
      << "resident " << owner.resident() << " of " << full << " with the owner idle";
}

TEST(Sink, TheOwnerFindsItsSurvivorsIntactAndReusesTheRest) {
  km_test::FreshHeaps fresh;
  IdleOwner owner;
  size_t full = owner.resident();
  owner.free_all_but_survivors();
  ASSERT_TRUE(within_seconds([&] { return owner.resident() * 2 < full; }));
  owner.finish();
  EXPECT_TRUE(owner.intact()) << "a survivor or a new cell was overwritten";
  EXPECT_GE(owner.reused(), kCells * 9 / 10) << "the freed cells' places were not reused";
}

TEST(Sink, InUseIsExactWhileTheOwnerIdlesAndAfter) {
  km_test::FreshHeaps fresh;
  IdleOwner owner;
  size_t before = stats().in_use;
  size_t full = owner.resident();
  owner.free_all_but_survivors();
  size_t freed = size_t(kCells - kCells / kKeepEvery) * kCell;
  EXPECT_EQ(before - stats().in_use, freed) << "frees waiting on an idle owner are not in use";
  ASSERT_TRUE(within_seconds([&] { return owner.resident() * 2 < full; }));
  EXPECT_EQ(before - stats().in_use, freed) << "sunk and parked cells are not in use";
  EXPECT_TRUE(km::remote_waiting(owner.heap())) << "the sink notes and parked cells wait for the owner";
  owner.finish();   // collects them, then frees everything
  EXPECT_EQ(before - stats().in_use, size_t(kCells) * kCell) << "once collected, as any remote free";
}

// A parked cell (held by the purger, its OS page still holding a survivor) keeps its free tag: a
// second free of it is caught.
TEST(SinkDeathTest, ASecondFreeOfAParkedCellIsCaught) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        IdleOwner owner;
        size_t full = owner.resident();
        owner.free_all_but_survivors();
        if (!within_seconds([&] { return owner.resident() * 2 < full; })) _exit(3);
        // Cell 1 shares its OS page with survivor 0 (cells are carved in address order): parked,
        // not sunk.
        km_free(owner.cell(1));
      },
      "double free");
}

// Owners wake while the purger sinks their heaps (for ThreadSanitizer, which runs this suite: the
// note's hand-over, parked cells collected while the purger may take the stack again, a trim's sink
// beside the purger's). Every cell reads as written until it is freed.
TEST(Sink, OwnersWakingDuringSinksKeepTheirCells) {
  struct Item {
    unsigned char* p;
    unsigned char v;
  };
  std::mutex m;
  std::vector<Item> to_free;
  std::atomic<bool> stop{false};
  std::atomic<long> bad{0};
  std::thread freer([&] {
    for (long n = 0; !stop.load() || !to_free.empty(); ++n) {
      std::vector<Item> batch;
      {
        std::lock_guard<std::mutex> g(m);
        batch.swap(to_free);
      }
      for (const Item& it : batch) {
        bad += !std::all_of(it.p, it.p + kCell, [&](unsigned char c) { return c == it.v; });
        km_free(it.p);
      }
      if (n % 64 == 63) km_trim(0);
      usleep(200);
    }
  });
  auto owner = [&](unsigned seed) {
    std::vector<Item> mine;
    for (int round = 0; round < 12; ++round) {
      std::vector<Item> handed;
      for (int i = 0; i < 4096; ++i) {
        auto v = static_cast<unsigned char>(seed * 31 + round * 7 + i);
        auto* p = static_cast<unsigned char*>(km_malloc(kCell));
        std::memset(p, v, kCell);
        (i % 16 == 0 ? mine : handed).push_back(Item{p, v});
      }
      {
        std::lock_guard<std::mutex> g(m);
        to_free.insert(to_free.end(), handed.begin(), handed.end());
      }
      // 0-16 ms, or 200 ms once in four rounds: past the idle wait (16 purge delays) for a sink
      usleep((seed + round) % 4 == 3 ? 200 * 1000 : ((seed + round) % 4) * 8 * 1000);
      for (const Item& it : mine)
        bad += !std::all_of(it.p, it.p + kCell, [&](unsigned char c) { return c == it.v; });
    }
    for (const Item& it : mine) km_free(it.p);
  };
  std::thread a(owner, 1u), b(owner, 2u);
  a.join();
  b.join();
  stop = true;
  freer.join();
  EXPECT_EQ(bad.load(), 0) << "a cell was overwritten";
}

// malloc_trim gives back at once what other threads freed into an idle heap. Without a purger thread
// (a fresh process, its option off before any thread starts), nothing else would.
TEST(SinkDeathTest, TrimGivesItBackAtOnce) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        km::g_options[int(km::Opt::purge_thread)] = 0;
        IdleOwner owner;
        size_t full = owner.resident();
        owner.free_all_but_survivors();
        usleep(50 * 1000);
        size_t waiting = owner.resident();
        km_trim(0);
        size_t trimmed = owner.resident();
        _exit(waiting + (1u << 20) >= full && trimmed * 2 < full ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
