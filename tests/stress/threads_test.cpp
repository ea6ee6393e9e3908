// Threads and fork under load, in a binary linked with -lkmalloc.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <random>
#include <sys/time.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "kmalloc.h"

namespace {

km_stats stats() {
  km_stats st;
  km_stats_get(&st);
  return st;
}

// A block whose contents prove it was not touched by anyone else.
struct Stamp {
  static void fill(void* p, size_t size, uint32_t seed) {
    auto* b = static_cast<unsigned char*>(p);
    for (size_t i = 0; i < size; ++i) b[i] = static_cast<unsigned char>(seed + i * 31);
  }
  static bool check(const void* p, size_t size, uint32_t seed) {
    auto* b = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < size; ++i)
      if (b[i] != static_cast<unsigned char>(seed + i * 31)) return false;
    return true;
  }
};

struct Item {
  void* p;
  size_t size;
  uint32_t seed;
};

class Channel {
 public:
  void push(Item it) {
    std::lock_guard<std::mutex> g(m_);
    q_.push_back(it);
    cv_.notify_one();
  }
  bool pop(Item* it) {
    std::unique_lock<std::mutex> g(m_);
    cv_.wait(g, [&] { return !q_.empty() || closed_; });
    if (q_.empty()) return false;
    *it = q_.front();
    q_.pop_front();
    return true;
  }
  void close() {
    std::lock_guard<std::mutex> g(m_);
    closed_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<Item> q_;
  bool closed_ = false;
};

TEST(Threads, BlocksFreedByAnotherThreadComeBackIntact) {
  constexpr int kPairs = 3, kPerProducer = 60000;
  std::atomic<long> bad{0}, freed{0};
  std::vector<std::thread> threads;
  std::vector<Channel> channels(kPairs);
  for (int t = 0; t < kPairs; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int i = 0; i < kPerProducer; ++i) {
        size_t size = 1 + rng() % (i % 100 == 0 ? 300000 : 2000);
        void* p = malloc(size);
        Stamp::fill(p, size, uint32_t(i));
        channels[t].push(Item{p, size, uint32_t(i)});
      }
      channels[t].close();
    });
    threads.emplace_back([&, t] {
      Item it;
      while (channels[t].pop(&it)) {
        if (!Stamp::check(it.p, it.size, it.seed)) bad++;
        free(it.p);
        freed++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(freed.load(), long(kPairs) * kPerProducer);
}

TEST(Threads, EightThreadsChurningWithContentChecks) {
  constexpr int kThreads = 8, kSlots = 2000, kOps = 150000;
  std::atomic<long> bad{0};
  // A shared table: threads replace random entries, so blocks die on other threads (larson).
  struct Slot {
    std::mutex m;
    Item it{nullptr, 0, 0};
  };
  std::vector<Slot> table(kSlots);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(100 + t);
      for (int i = 0; i < kOps; ++i) {
        size_t size = 1 + rng() % 1024;
        void* p = malloc(size);
        Stamp::fill(p, size, uint32_t(i * kThreads + t));
        Slot& s = table[rng() % kSlots];
        Item old;
        {
          std::lock_guard<std::mutex> g(s.m);
          old = s.it;
          s.it = Item{p, size, uint32_t(i * kThreads + t)};
        }
        if (old.p) {
          if (!Stamp::check(old.p, old.size, old.seed)) bad++;
          free(old.p);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (auto& s : table) {
    if (s.it.p && !Stamp::check(s.it.p, s.it.size, s.it.seed)) bad++;
    free(s.it.p);
  }
  EXPECT_EQ(bad.load(), 0);
}

// Owners that nap (long enough for a sink, or not) while other threads free most of what they
// allocated: the purger sinks their heaps under them (core/sink.h), they wake in the middle of it,
// some exit and leave their survivors to the next owner, and a thread trims now and then. Every block
// must read as written until it is freed, and "in use" must come back to where it was.
TEST(Sink, NappingOwnersKeepTheirBlocksWhileOthersFreeAndThePurgerSinks) {
  constexpr int kOwners = 4, kFreers = 2;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(6);
  std::atomic<long> bad{0}, rounds{0}, sunk_rounds{0};
  size_t in_use_before = stats().in_use;
  auto to_free = std::make_unique<Channel>();   // its deque keeps its map: gone before the count
  std::mutex handoff_m;
  std::vector<Item> handoff;   // survivors of an owner that exited, for the next one
  auto owner = [&](int id) {
    std::mt19937 rng(700 + id);
    std::vector<Item> mine;
    {
      std::lock_guard<std::mutex> g(handoff_m);
      mine.swap(handoff);
    }
    for (int round = 0; std::chrono::steady_clock::now() < deadline; ++round) {
      for (int i = 0; i < 20000; ++i) {
        size_t size = rng() % 16 == 0 ? 1000 + rng() % 7000 : 16 + rng() % 500;
        auto seed = uint32_t(rng());
        void* p = malloc(size);
        Stamp::fill(p, size, seed);
        if (rng() % 10 == 0) mine.push_back(Item{p, size, seed});
        else to_free->push(Item{p, size, seed});
      }
      // ms: short, or once in four past the idle wait of a sink (16 purge delays of 10 ms)
      int nap = rng() % 4 == 0 ? 170 + int(rng() % 80) : int(rng() % 40);
      std::this_thread::sleep_for(std::chrono::milliseconds(nap));
      rounds++;
      sunk_rounds += nap > 160;
      for (const Item& it : mine)
        if (!Stamp::check(it.p, it.size, it.seed)) bad++;
      for (size_t i = 0; i < mine.size(); i += 2) free(mine[i].p), mine[i].p = nullptr;
      mine.erase(std::remove_if(mine.begin(), mine.end(), [](const Item& it) { return !it.p; }), mine.end());
      if (id % 2 == 0 && round % 3 == 2) break;   // exit: the next owner takes the survivors
    }
    std::lock_guard<std::mutex> g(handoff_m);
    handoff.insert(handoff.end(), mine.begin(), mine.end());
  };
  std::vector<std::thread> freers;
  for (int f = 0; f < kFreers; ++f)
    freers.emplace_back([&, f] {
      Item it;
      for (long n = 0; to_free->pop(&it); ++n) {
        if (!Stamp::check(it.p, it.size, it.seed)) bad++;
        free(it.p);
        if (f == 0 && n % 200000 == 199999) km_trim(0);   // sinks every live heap at once
      }
    });
  std::vector<std::thread> owners;
  for (int o = 0; o < kOwners; ++o) owners.emplace_back(owner, o);
  // Owners that exit are replaced until the deadline.
  for (int next = kOwners; std::chrono::steady_clock::now() < deadline; ++next) {
    for (auto& t : owners)
      if (t.joinable()) {
        t.join();
        t = std::thread(owner, next);
        break;
      }
  }
  for (auto& t : owners)
    if (t.joinable()) t.join();
  to_free->close();
  for (auto& t : freers) t.join();
  to_free.reset();
  for (const Item& it : handoff) {
    if (!Stamp::check(it.p, it.size, it.seed)) bad++;
    free(it.p);
  }
  std::vector<Item>().swap(handoff);
  EXPECT_EQ(bad.load(), 0) << "a block was overwritten";
  EXPECT_GT(sunk_rounds.load(), 4) << rounds.load() << " rounds";
  km_trim(0);
  EXPECT_LE(stats().in_use, in_use_before + (4u << 10)) << "in use did not come back";
}

// fork() while the purger sinks an idle heap: the fork waits for one step of the sink, not for all of
// it, and its child gets every cell the sink held back (core/sink.h: sink_fork_child). Here every
// cell was freed by another thread, so the child's trim empties the idle heap's pages and gives back
// its segments; a cell lost in the child would keep its page, and its segment, for ever.
TEST(Sink, ForkChildrenOfASinkingProcessGetEveryCellBack) {
  km_trim(0);
  const size_t segments_before = stats().segments;
  std::mutex m;
  std::condition_variable cv;
  bool allocated = false, released = false;
  std::vector<void*> cells;
  std::thread owner([&] {
    std::vector<void*> mine;
    for (int i = 0; i < (1 << 20); ++i) {
      void* p = malloc(64);
      memset(p, 1, 64);
      mine.push_back(p);
    }
    std::unique_lock<std::mutex> l(m);
    cells.swap(mine);
    allocated = true;
    cv.notify_all();
    cv.wait(l, [&] { return released; });   // idle while the cells are freed and sunk
  });
  {
    std::unique_lock<std::mutex> l(m);
    cv.wait(l, [&] { return allocated; });
  }
  std::thread([&] {
    for (void* p : cells) free(p);
  }).join();
  int forks = 0, failed = 0;
  double worst_ms = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(900);
  while (std::chrono::steady_clock::now() < until) {
    auto t0 = std::chrono::steady_clock::now();
    pid_t pid = fork();
    if (pid == 0) {
      km_trim(0);   // drains the exited owner's heap (pooled here), sink leftovers included
      _exit(stats().segments <= segments_before + 1 ? 0 : 1);
    }
    worst_ms = std::max(worst_ms, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ++forks;
    failed += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
  }
  {
    std::lock_guard<std::mutex> l(m);
    released = true;
  }
  cv.notify_all();
  owner.join();
  EXPECT_EQ(failed, 0) << "of " << forks << " children, some kept the idle heap's segments";
  RecordProperty("worst_fork_ms", int(worst_ms));
}

TEST(Threads, TenThousandThreadsLeaveNoGrowthBehind) {
  auto run_batch = [](int n) {
    for (int i = 0; i < n; i += 8) {
      std::vector<std::thread> ts;
      for (int k = 0; k < 8; ++k) {
        ts.emplace_back([] {
          std::vector<void*> v;
          for (int j = 0; j < 50; ++j) v.push_back(malloc(16 + j * 40));
          for (void* p : v) free(p);
          void* keep = malloc(1000);   // freed by nobody: must not pin a heap per thread
          free(keep);
        });
      }
      for (auto& t : ts) t.join();
    }
  };
  run_batch(1000);
  km_stats after_1k = stats();
  run_batch(9000);
  km_stats after_10k = stats();
  EXPECT_LE(after_10k.heaps, after_1k.heaps + 8) << "heaps of exited threads are not reused";
  EXPECT_LE(after_10k.mapped, after_1k.mapped + (16u << 20)) << "memory grows with thread churn";
  EXPECT_LE(after_10k.segments, after_1k.segments + 4);
}

TEST(Threads, BlocksOutliveTheirThreadAndAreFreedLater) {
  std::vector<Item> blocks;
  std::mutex m;
  std::vector<std::thread> ts;
  for (int t = 0; t < 16; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i) {
        size_t size = 64 + (i % 7) * 100;
        void* p = malloc(size);
        Stamp::fill(p, size, uint32_t(t * 1000 + i));
        std::lock_guard<std::mutex> g(m);
        blocks.push_back(Item{p, size, uint32_t(t * 1000 + i)});
      }
    });
  }
  for (auto& t : ts) t.join();   // every owner has exited; its heap went to the pool
  size_t live_bytes = 0;
  for (const Item& it : blocks) live_bytes += it.size;
  km_stats before = stats();
  long bad = 0;
  for (const Item& it : blocks) {
    if (!Stamp::check(it.p, it.size, it.seed)) bad++;
    free(it.p);
  }
  km_trim(0);   // collects the frees queued for the exited threads' heaps
  km_stats after = stats();
  EXPECT_EQ(bad, 0);
  EXPECT_GE(before.in_use - after.in_use, live_bytes) << "frees to exited threads' heaps were lost";
}

thread_local struct LateFree {
  void* p = nullptr;
  ~LateFree() { free(p); }   // runs after the thread's heap may already be gone
} tl_late;

TEST(Threads, FreeAndMallocInLateThreadDestructorsWork) {
  km_stats before = stats();
  for (int i = 0; i < 100; ++i) {
    std::thread t([] {
      tl_late.p = malloc(100);
      static pthread_key_t key;
      static std::once_flag once;
      std::call_once(once, [] {
        pthread_key_create(&key, [](void* v) {
          free(v);
          free(malloc(50));   // a malloc after kmalloc's own destructor may have run
        });
      });
      pthread_setspecific(key, malloc(30));
    });
    t.join();
  }
  km_trim(0);
  km_stats after = stats();
  EXPECT_LE(after.heaps, before.heaps + 2) << "late allocations must not create a heap per thread";
  EXPECT_LE(after.in_use, before.in_use + 4096) << "late frees were lost";
}

// ---- fork

int wait_ok(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void child_work() {
  alarm(20);   // a deadlocked child dies instead of hanging the suite
  std::vector<void*> v;
  for (int i = 0; i < 2000; ++i) v.push_back(malloc(1 + i % 3000));
  for (void* p : v) free(p);
  std::thread t([] { free(malloc(12345)); });
  t.join();
}

TEST(Fork, ChildOfAMultithreadedParentCanAllocate) {
  std::atomic<bool> stop{false};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&, t] {
      std::mt19937 rng(t);
      std::vector<void*> v(256, nullptr);
      while (!stop) {
        size_t i = rng() % v.size();
        free(v[i]);
        v[i] = malloc(1 + rng() % (i % 16 == 0 ? 400000 : 4000));
      }
      for (void* p : v) free(p);
    });
  }
  for (int k = 0; k < 30; ++k) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      child_work();
      _exit(0);
    }
    EXPECT_EQ(wait_ok(pid), 0) << "child " << k;
  }
  stop = true;
  for (auto& t : ts) t.join();
}

std::vector<pid_t>* g_children;
volatile sig_atomic_t g_forks = 0;

void fork_in_handler(int) {
  if (g_forks >= 20) return;
  pid_t pid = fork();   // may interrupt malloc or free in the main loop
  if (pid == 0) {
    alarm(20);
    void* p = malloc(100);
    void* q = malloc(300000);
    free(p);
    free(q);
    _exit(0);
  }
  if (pid > 0) {
    (*g_children)[g_forks] = pid;
    g_forks = g_forks + 1;
  }
}

TEST(Fork, FromASignalHandlerThatInterruptedMalloc) {
  std::vector<pid_t> children(20, 0);
  g_children = &children;
  g_forks = 0;
  struct sigaction sa = {};
  sa.sa_handler = fork_in_handler;
  sigaction(SIGALRM, &sa, nullptr);
  itimerval it = {{0, 500}, {0, 500}};
  setitimer(ITIMER_REAL, &it, nullptr);
  std::mt19937 rng(7);
  std::vector<void*> v(512, nullptr);
  for (long i = 0; g_forks < 20 && i < 200000000; ++i) {
    size_t k = rng() % v.size();
    free(v[k]);
    v[k] = malloc(1 + rng() % (k % 64 == 0 ? 300000 : 2000));   // slow paths too
  }
  itimerval off = {};
  setitimer(ITIMER_REAL, &off, nullptr);
  signal(SIGALRM, SIG_DFL);
  for (void* p : v) free(p);
  ASSERT_EQ(g_forks, 20);
  for (pid_t pid : children) EXPECT_EQ(wait_ok(pid), 0);
}

}  // namespace
