// Threads through the km_* API (core_dep, so the same tests run under ThreadSanitizer in
// scripts/sanitize): 32 threads churning with content checks and cross-thread frees, and RSS /
// mapped memory / heap count bounded over a long-ish run of threads coming and going.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "kmalloc.h"

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

namespace {

// Work is scaled down under sanitizers (TSan is 5-15x slower).
constexpr int kScale = kSanitized ? 4 : 1;

km_stats stats() {
  km_stats s;
  km_stats_get(&s);
  return s;
}

size_t rss_bytes() {
  FILE* f = fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long size = 0, res = 0;
  if (fscanf(f, "%lu %lu", &size, &res) != 2) res = 0;
  fclose(f);
  return res * 4096;
}

struct Rng {
  uint64_t s;
  uint64_t next() {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    return s;
  }
};

// A block stamped with its owner's id, size and a sequence number in every word, so any overlap,
// torn hand-over or stale reuse shows up as a wrong word.
struct Stamp {
  uint64_t* p;
  size_t words;
  uint64_t tag;
};
Stamp make(size_t bytes, uint64_t tag) {
  auto* p = static_cast<uint64_t*>(km_malloc(bytes));
  if (!p) return {nullptr, 0, 0};
  size_t words = bytes / 8;
  for (size_t i = 0; i < words; ++i) p[i] = tag ^ (i * 0x9E3779B97F4A7C15ull);
  return {p, words, tag};
}
bool check(const Stamp& s) {
  for (size_t i = 0; i < s.words; ++i)
    if (s.p[i] != (s.tag ^ (i * 0x9E3779B97F4A7C15ull))) return false;
  return true;
}

size_t pick_size(Rng& r) {
  uint64_t x = r.next();
  switch (x % 16) {
    case 0: return 8 + (x >> 8) % 200000;   // up to ~200 KiB: lanes and large blocks
    case 1:
    case 2: return 8 + (x >> 8) % 16384;
    default: return 8 + (x >> 8) % 512;
  }
}

TEST(Threads, ThirtyTwoThreadsChurnWithContentChecksAndCrossThreadFrees) {
  constexpr int kThreads = 32;
  const int ops = 12000 / kScale;
  // A shared exchange: each thread drops some of its blocks here and takes others' blocks to free.
  constexpr int kSlots = 256;
  std::mutex mu;
  std::vector<Stamp> exchange(kSlots);
  std::atomic<long> bad{0}, failed{0};
  auto body = [&](int t) {
    Rng r{0x12345u + uint64_t(t) * 7919};
    std::vector<Stamp> mine(64);
    for (int i = 0; i < ops; ++i) {
      Stamp& s = mine[r.next() % mine.size()];
      if (s.p) {
        if (!check(s)) bad.fetch_add(1);
        if (r.next() % 4 == 0) {   // hand it to another thread instead of freeing it
          std::lock_guard<std::mutex> g(mu);
          Stamp& x = exchange[r.next() % kSlots];
          std::swap(x, s);
        }
        if (s.p) {
          if (!check(s)) bad.fetch_add(1);
          if (r.next() % 8 == 0) {   // realloc keeps the stamped prefix
            size_t nb = pick_size(r);
            auto* q = static_cast<uint64_t*>(km_realloc(s.p, nb));
            if (!q) {
              failed.fetch_add(1);
            } else {
              size_t keep = std::min(s.words, nb / 8);
              for (size_t k = 0; k < keep; ++k)
                if (q[k] != (s.tag ^ (k * 0x9E3779B97F4A7C15ull))) bad.fetch_add(1);
              s.p = q;
              s.words = keep;
              continue;
            }
          }
          km_free(s.p);
          s.p = nullptr;
        }
      }
      s = make(pick_size(r), (uint64_t(t) << 48) ^ uint64_t(i) ^ r.next() << 20);
      if (!s.p) failed.fetch_add(1);
    }
    for (auto& s : mine) {
      if (s.p) {
        if (!check(s)) bad.fetch_add(1);
        km_free(s.p);
      }
    }
  };
  km_stats before = stats();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(body, t);
  for (auto& th : threads) th.join();
  for (auto& s : exchange) {
    if (s.p) {
      if (!check(s)) bad.fetch_add(1);
      km_free(s.p);
    }
  }
  EXPECT_EQ(bad.load(), 0) << "blocks with damaged contents";
  EXPECT_EQ(failed.load(), 0) << "allocations that failed";
  km_trim(0);
  EXPECT_EQ(stats().in_use, before.in_use) << "bytes still in use after every block was freed";
}

TEST(Threads, ThreadChurnKeepsRssMappedAndHeapsBounded) {
  // Rounds of 8 short-lived threads, each allocating ~2 MiB in mixed sizes, freeing half itself and
  // leaving half to be freed by the main thread after it exited. The heaps of exited threads are
  // reused, so memory and the heap count stop growing after the first rounds.
  const auto run_for = std::chrono::milliseconds(kSanitized ? 1500 : 3000);
  auto round = [] {
    std::vector<std::vector<void*>> leftovers(8);
    std::vector<std::thread> ts;
    for (int t = 0; t < 8; ++t)
      ts.emplace_back([&leftovers, t] {
        Rng r{uint64_t(t) * 31 + 1};
        std::vector<void*> blocks;
        size_t total = 0;
        while (total < (2u << 20)) {
          size_t n = pick_size(r);
          void* p = km_malloc(n);
          if (!p) continue;
          std::memset(p, 0x5a, n);
          blocks.push_back(p);
          total += n;
        }
        for (size_t i = 0; i < blocks.size(); ++i) {
          if (i % 2) km_free(blocks[i]);
          else leftovers[t].push_back(blocks[i]);
        }
      });
    for (auto& th : ts) th.join();
    for (auto& v : leftovers)
      for (void* p : v) km_free(p);
  };
  for (int i = 0; i < 5; ++i) round();   // warm up: heaps, segments, caches
  km_trim(0);
  km_stats warm = stats();
  size_t warm_rss = rss_bytes();
  size_t rounds = 0, max_rss = warm_rss, max_mapped = warm.mapped;
  auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - t0 < run_for) {
    round();
    ++rounds;
    km_trim(0);
    max_rss = std::max(max_rss, rss_bytes());
    max_mapped = std::max(max_mapped, stats().mapped);
  }
  km_stats end = stats();
  RecordProperty("rounds", int(rounds));
  RecordProperty("warm_rss_kib", int(warm_rss >> 10));
  RecordProperty("max_rss_kib", int(max_rss >> 10));
  std::printf("thread churn: %zu rounds of 8 threads, heaps %zu -> %zu, mapped %zu -> max %zu KiB, "
              "rss %zu -> max %zu KiB\n",
              rounds, warm.heaps, end.heaps, warm.mapped >> 10, max_mapped >> 10, warm_rss >> 10,
              max_rss >> 10);
  EXPECT_GE(rounds, 3u);
  EXPECT_LE(end.heaps, warm.heaps + 8) << "exited threads' heaps are not reused";
  EXPECT_EQ(end.in_use, warm.in_use);
  EXPECT_LE(max_mapped, warm.mapped + (64u << 20)) << "mapped memory grows with thread churn";
  if (!kSanitized) {
    EXPECT_LE(max_rss, warm_rss + (64u << 20)) << "RSS grows with thread churn";
  }
}

}  // namespace
