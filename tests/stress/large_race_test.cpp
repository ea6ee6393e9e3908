// The race of issue 9: one thread grows 8 blocks by realloc from 256 KiB to 4 MiB (a page mapped right
// after each block where the address space allows, so that mremap must move), while two threads
// malloc, check malloc_usable_size, stamp, verify and free blocks of 256 KiB-4 MiB. Every usable size
// must be the request rounded up to the page (spans and huge blocks), and no block may ever lose its
// contents: a path that unmapped or handed out another block's memory shows up as a wrong stamp or a
// SIGSEGV. Runs with KMALLOC_LARGE_CACHE_MB=0 and in secure mode too (meson.build).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <malloc.h>
#include <random>
#include <sys/mman.h>
#include <thread>
#include <vector>

namespace {
constexpr size_t kPage = 4096;
size_t rounded(size_t n) { return (n + kPage - 1) & ~(kPage - 1); }

// A byte at the start of every page and the last byte (unless that is a page start itself).
void stamp(unsigned char* p, size_t n, unsigned seed) {
  p[n - 1] = static_cast<unsigned char>(seed * 3);
  for (size_t i = 0; i < n; i += kPage) p[i] = static_cast<unsigned char>(seed + i / kPage);
}
bool stamped(const unsigned char* p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i += kPage)
    if (p[i] != static_cast<unsigned char>(seed + i / kPage)) return false;
  return (n - 1) % kPage == 0 || p[n - 1] == static_cast<unsigned char>(seed * 3);
}

double seconds() {
  const char* s = getenv("KM_RACE_SECONDS");
  return s ? atof(s) : 3.0;
}

TEST(LargeRace, ReallocAgainstMallocFreeNeverConfusesBlocks) {
  std::atomic<bool> stop{false};
  std::atomic<long> bad_usable{0}, bad_data{0}, ops{0};
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds());

  std::thread grower([&] {
    std::mt19937 rng(1);
    while (!stop.load()) {
      unsigned char* blocks[8];
      size_t sizes[8];
      void* walls[8] = {};
      for (int i = 0; i < 8; ++i) {
        sizes[i] = 256 << 10;
        blocks[i] = static_cast<unsigned char*>(malloc(sizes[i]));
        ASSERT_NE(blocks[i], nullptr);
        stamp(blocks[i], sizes[i], unsigned(i));
        // A page right after the block, where nothing of ours is: growth in place is impossible.
        void* w = mmap(blocks[i] + rounded(sizes[i]), kPage, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS |
                       MAP_FIXED_NOREPLACE, -1, 0);
        walls[i] = w == MAP_FAILED ? nullptr : w;
      }
      for (size_t size = 512 << 10; size <= (4 << 20) && !stop.load(); size *= 2) {
        for (int i = 0; i < 8; ++i) {
          size_t n = size + (rng() % 8) * 1000;
          auto* q = static_cast<unsigned char*>(realloc(blocks[i], n));
          ASSERT_NE(q, nullptr);
          if (!stamped(q, sizes[i], unsigned(i))) bad_data++;
          if (malloc_usable_size(q) != rounded(n)) bad_usable++;
          blocks[i] = q;
          sizes[i] = n;
          stamp(q, n, unsigned(i));
          ops++;
        }
      }
      for (int i = 0; i < 8; ++i) {
        if (!stamped(blocks[i], sizes[i], unsigned(i))) bad_data++;
        free(blocks[i]);
        if (walls[i]) munmap(walls[i], kPage);
      }
    }
  });
  auto churn = [&](unsigned id) {
    std::mt19937 rng(id);
    struct Live {
      unsigned char* p;
      size_t n;
      unsigned seed;
    };
    std::vector<Live> live;
    unsigned seed = id * 1000;
    while (std::chrono::steady_clock::now() < deadline) {
      if (live.size() < 6) {
        size_t n = (256 << 10) + rng() % ((4 << 20) - (256 << 10));
        auto* p = static_cast<unsigned char*>(malloc(n));
        ASSERT_NE(p, nullptr);
        if (malloc_usable_size(p) != rounded(n)) bad_usable++;
        stamp(p, n, ++seed);
        live.push_back({p, n, seed});
      } else {
        size_t k = rng() % live.size();
        Live l = live[k];
        if (malloc_usable_size(l.p) != rounded(l.n)) bad_usable++;
        if (!stamped(l.p, l.n, l.seed)) bad_data++;
        free(l.p);
        live.erase(live.begin() + long(k));
      }
      ops++;
    }
    for (Live& l : live) free(l.p);
  };
  std::thread a(churn, 7), b(churn, 11);
  a.join();
  b.join();
  stop = true;
  grower.join();
  EXPECT_EQ(bad_usable.load(), 0) << "malloc_usable_size differed from the request rounded to a page";
  EXPECT_EQ(bad_data.load(), 0) << "a block lost its contents";
  EXPECT_GT(ops.load(), 100);
}
}  // namespace
