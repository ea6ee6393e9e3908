// KMALLOC_SECURE=1: each hardening feature, shown by performing the bug or attack it defends
// against. Linked with -lkmalloc; the option must be in the environment before the library
// initialises, so main() re-executes the binary with KMALLOC_SECURE=1 when it is missing (meson's
// test env sets it already). Death tests run in the threadsafe style (a re-executed child).
#include <gtest/gtest.h>

#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <malloc.h>
#include <numeric>
#include <set>
#include <thread>
#include <string>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "core/config.h"

// The tests write past blocks on purpose.
#pragma GCC diagnostic ignored "-Warray-bounds"
#pragma GCC diagnostic ignored "-Wstringop-overflow"

namespace {

uintptr_t addr(const void* p) { return reinterpret_cast<uintptr_t>(p); }

TEST(Secure, IsActive) {
  // Secure cells keep the exact requested size (the canary starts right after it).
  void* p = malloc(20);
  EXPECT_EQ(malloc_usable_size(p), 20u) << "KMALLOC_SECURE=1 is not in effect";
  free(p);
}

// ---- encoded free lists: a use-after-free write into a freed cell's link is detected, not followed

TEST(SecureDeathTest, UseAfterFreeWriteIntoTheFreeListLinkIsDetected) {
  EXPECT_DEATH(
      {
        auto* p = static_cast<uintptr_t*>(malloc(64));
        void* live = malloc(64);
        free(p);
        p[0] = addr(live);   // classic free-list poisoning: make the next malloc return `live`
        void* a = malloc(64);
        void* b = malloc(64);
        std::fprintf(stderr, "not detected: %p %p\n", a, b);
      },
      "malloc\\(\\): corrupted free list");
}

TEST(SecureDeathTest, APoisonedRemoteFreeLinkIsReportedNotFollowed) {
  // A cell freed by another thread waits on its owner's remote stack, linked through its first
  // word; a use-after-free write there must not steer the owner's collection.
  EXPECT_DEATH(
      {
        auto* a = static_cast<uintptr_t*>(malloc(64));
        auto* b = static_cast<uintptr_t*>(malloc(64));
        std::thread([&] {
          free(a);
          free(b);   // b -> a on the owner's remote stack
        }).join();
        static uintptr_t target[8];
        b[0] = addr(target);   // the link now points outside the heap
        for (int i = 0; i < 100000; ++i) (void)!malloc(64);   // the owner collects on a slow path
        std::fprintf(stderr, "not detected\n");
      },
      "free\\(\\): corrupted remote free list");
}

TEST(SecureDeathTest, GarbageInAFreedLinkIsDetected) {
  EXPECT_DEATH(
      {
        auto* p = static_cast<uintptr_t*>(malloc(300));
        free(p);
        p[0] = 0x4141414141414141ull;
        for (int i = 0; i < 4; ++i) (void)!malloc(300);
      },
      "corrupted free list");
}

// ---- the keys: reading freed and live cells reveals nothing that decodes another cell

// Two cells of one 64 KiB lane page (200-byte requests: one-slot pages), allocated one after the
// other; nullptr if none were found.
bool two_cells_of_one_page(size_t n, void** x, void** y) {
  void* prev = malloc(n);
  for (int i = 0; i < 1000; ++i) {
    void* c = malloc(n);
    if ((addr(c) >> 16) == (addr(prev) >> 16)) {
      *x = prev;
      *y = c;
      return true;
    }
    prev = c;
  }
  return false;
}

TEST(Secure, AFreedCellRevealsNoKeyThatDecodesAnotherCell) {
  // Until issue 11 the free tag (word 1 of a freed cell) was page_key ^ cell, and the encoded link
  // (word 0) was next ^ page_key ^ rotl(cell, 17): one use-after-free read of a tag gave the page
  // key, hence every link of the page (and g_page_secret: every page). A live cell's tail word,
  // size ^ (page_key * kMix ^ cell), and its canary byte, (page_key >> 8) | 0x81, were tied to the
  // same key. Perform that attack: what one cell shows must decode no other.
  void *x, *y;
  ASSERT_TRUE(two_cells_of_one_page(200, &x, &y));
  std::vector<char*> live;   // more cells of the page, to learn the cell size (gcd of distances)
  size_t cell = 0;
  for (int i = 0; i < 64; ++i) {
    auto* c = static_cast<char*>(malloc(200));
    if ((addr(c) >> 16) != (addr(y) >> 16)) continue;
    live.push_back(c);
    size_t d = addr(c) > addr(y) ? addr(c) - addr(y) : addr(y) - addr(c);
    cell = std::gcd(cell, d);
  }
  ASSERT_GE(live.size(), 8u);
  free(x);
  free(y);   // y's link now encodes x
  auto* yw = static_cast<volatile uint64_t*>(y);
  uint64_t page_key = yw[1] ^ addr(y);   // what the free tag gives away
  uint64_t old_decode = yw[0] ^ page_key ^ ((addr(y) << 17) | (addr(y) >> 47));
  EXPECT_NE(yw[0], addr(x)) << "links are not encoded";
  EXPECT_NE(old_decode, addr(x)) << "the free tag's key decodes the free list";
  const uint64_t kMix = 0x9E3779B97F4A7C15ull;
  int tail_leaks = 0, canary_leaks = 0;
  for (char* c : live) {
    uint64_t tail;
    std::memcpy(&tail, c + cell - 8, 8);
    tail_leaks += tail == (200 ^ ((page_key * kMix) ^ addr(c)));
    canary_leaks += static_cast<unsigned char>(c[200]) == static_cast<unsigned char>((page_key >> 8) | 0x81);
  }
  RecordProperty("cell_size", int(cell));
  EXPECT_EQ(tail_leaks, 0) << "the size words are derived from the free tags' key (cell " << cell << ")";
  EXPECT_LT(canary_leaks, int(live.size()) / 4 + 2) << "the canary byte is derived from the free tags' key";
  for (char* c : live) free(c);
}

TEST(SecureDeathTest, AStaleLinkWrittenBackIntoAFreedCellIsRefused) {
  // Replay, which needs no key: save a freed cell's link and tag (a use-after-free read), let the
  // cell and the one it links to be handed out, free the first again and write the saved words
  // back (a use-after-free write). The list then links to a block in use: following it would hand
  // that block out twice.
  EXPECT_DEATH(
      {
        void* p;
        void* q;
        if (!two_cells_of_one_page(700, &q, &p)) _exit(3);
        free(q);
        free(p);   // p -> q
        uint64_t saved[2];
        std::memcpy(saved, p, sizeof saved);
        void* a = malloc(700);
        void* b = malloc(700);
        if (a != p || b != q) {
          std::fprintf(stderr, "unexpected order %p %p / %p %p\n", a, b, p, q);
          _exit(4);
        }
        free(p);
        std::memcpy(p, saved, sizeof saved);   // p -> q again, though q is in use
        void* c = malloc(700);                 // p
        void* d = malloc(700);                 // q, a second time
        std::fprintf(stderr, "not detected: %p %p, q %p in use\n", c, d, q);
      },
      "kmalloc\\[[0-9]+\\] [^:]*: malloc\\(\\): corrupted free list \\(a link to a block in use\\) at 0x");
}

// ---- canaries: a 1-byte overflow past the requested size is reported on free

TEST(SecureDeathTest, OneByteOverflowIsReportedOnFree) {
  // Sizes across lanes; the canary bytes are never 0, so writing 0 always changes one.
  for (size_t n : {size_t(1), size_t(13), size_t(24), size_t(100), size_t(1000), size_t(4000),
                   size_t(20000), size_t(100000), size_t(131000)}) {
    EXPECT_DEATH(
        {
          auto* p = static_cast<unsigned char*>(malloc(n));
          p[n] = 0;
          free(p);
        },
        "free\\(\\): heap buffer overflow")
        << "size " << n;
  }
}

TEST(SecureDeathTest, OverflowIntoTheSizeWordOfAnExactFitIsReported) {
  // 120 + the 8-byte size word fill a 128-byte cell exactly: the first byte past the request is
  // the size word itself.
  EXPECT_DEATH(
      {
        auto* p = static_cast<unsigned char*>(malloc(120));
        p[120] ^= 1;
        free(p);
      },
      "heap buffer overflow");
}

TEST(Secure, WritingUpToTheRequestedSizeIsFine) {
  for (size_t n = 1; n < 3000; n += 7) {
    auto* p = static_cast<unsigned char*>(malloc(n));
    ASSERT_NE(p, nullptr);
    std::memset(p, 0, n);
    free(p);
  }
}

// ---- guard pages: after large blocks and at the end of every lane page

TEST(SecureDeathTest, WriteJustPastALargeBlockHitsItsGuardPage) {
  EXPECT_EXIT(
      {
        auto* p = static_cast<volatile char*>(malloc(1 << 20));
        p[(1 << 20) - 1] = 1;   // the last byte is fine
        p[1 << 20] = 1;         // the first byte past it is the guard
        _exit(0);
      },
      ::testing::KilledBySignal(SIGSEGV), "");
  EXPECT_EXIT(
      {
        // Not a page multiple: the block is rounded up to whole pages and the guard follows them.
        auto* p = static_cast<volatile char*>(malloc(200000));
        size_t end = (200000 + 4095) & ~size_t(4095);
        p[end - 1] = 1;
        p[end] = 1;
        _exit(0);
      },
      ::testing::KilledBySignal(SIGSEGV), "");
}

TEST(SecureDeathTest, LinearOverflowOutOfALanePageHitsItsGuardPage) {
  EXPECT_EXIT(
      {
        auto* p = static_cast<char*>(malloc(40));
        // Run off the end of the cell, through its neighbours, to the end of the 64 KiB page.
        std::memset(p, 'A', km::kSlotSize);
        _exit(0);
      },
      ::testing::KilledBySignal(SIGSEGV), "");
}

// ---- random cell order within a fresh page

TEST(Secure, CellsOfAFreshPageComeOutInRandomOrder) {
  // 200-byte requests (a lane gtest does not use much). Without secure mode every cell of a fresh
  // page follows the previous one; here few do.
  std::vector<char*> cells;
  for (int i = 0; i < 64; ++i) cells.push_back(static_cast<char*>(malloc(200)));
  std::set<char*> distinct(cells.begin(), cells.end());
  EXPECT_EQ(distinct.size(), cells.size());
  size_t stride = SIZE_MAX;
  for (size_t i = 1; i < cells.size(); ++i) {
    size_t d = size_t(cells[i] > cells[i - 1] ? cells[i] - cells[i - 1] : cells[i - 1] - cells[i]);
    if (d) stride = std::min(stride, d);
  }
  int sequential = 0, increasing = 0;
  for (size_t i = 1; i < cells.size(); ++i) {
    sequential += cells[i] == cells[i - 1] + stride;
    increasing += cells[i] > cells[i - 1];
  }
  RecordProperty("sequential_pairs", sequential);
  EXPECT_LT(sequential, 16) << "cells come out in address order (stride " << stride << ")";
  EXPECT_GT(increasing, 10);
  EXPECT_LT(increasing, 53);
  for (char* c : cells) free(c);
}

// ---- zero-on-free

TEST(Secure, FreedCellsReadAsZeros) {
  auto* p = static_cast<unsigned char*>(malloc(300));
  std::memset(p, 0xAA, 300);
  free(p);
  // Use after free, on purpose: only the free-list link and the free tag (16 bytes) are non-zero.
  size_t dirty = 0;
  for (size_t i = 16; i < 300; ++i) dirty += p[i] != 0;
  EXPECT_EQ(dirty, 0u);
  auto* q = static_cast<unsigned char*>(malloc(300));   // the same cell comes back: all zero
  EXPECT_EQ(q, p);
  for (size_t i = 0; i < 300; ++i) ASSERT_EQ(q[i], 0) << i;
  free(q);
}

TEST(Secure, CellsFreedByAnotherThreadAreZeroedToo) {
  auto* p = static_cast<unsigned char*>(malloc(500));
  std::memset(p, 0xBB, 500);
  std::thread([p] { free(p); }).join();
  size_t dirty = 0;
  for (size_t i = 16; i < 500; ++i) dirty += p[i] != 0;
  EXPECT_EQ(dirty, 0u);
}

TEST(Secure, ALargeBlockReusedAfterFreeReadsAsZeros) {
  auto* p = static_cast<unsigned char*>(malloc(256 << 10));
  std::memset(p, 0xCC, 256 << 10);
  free(p);
  auto* q = static_cast<unsigned char*>(malloc(256 << 10));
  RecordProperty("reused", q == p ? "yes" : "no");
  for (size_t i = 0; i < (256u << 10); ++i) ASSERT_EQ(q[i], 0) << i;
  free(q);
}

// ---- a secure heap past vm.max_map_count

// Each lane page's guard splits a mapping in two, and a process may have vm.max_map_count mappings
// (65,530 by default): about 2 GiB of small-cell pages. Past that, secure mode must fail cleanly:
// NULL + ENOMEM, one line saying why, printed once; freeing gives the mappings back. The child
// fills the mapping table itself first (one-page mappings of alternating protection, which cannot
// merge), leaving `headroom` free, so the limit comes after a few MiB instead of 2 GiB of RSS
// (KM_SECURE_FULL=1: no filling, allocate 200-byte blocks up to 8 GiB or the limit).
struct ChildResult {
  int status = -1;
  std::string err;
};
ChildResult run_child(void (*body)()) {
  int fds[2];
  if (pipe(fds) != 0) return {};
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    body();
    _exit(0);
  }
  close(fds[1]);
  ChildResult r;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) r.err.append(buf, size_t(n));
  close(fds[0]);
  waitpid(pid, &r.status, 0);
  return r;
}

void fill_the_mapping_table(size_t headroom) {
  const size_t page = 4096;
  size_t cap = 1 << 20;
  auto** maps = static_cast<void**>(mmap(nullptr, cap * sizeof(void*), PROT_READ | PROT_WRITE,
                                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  size_t n = 0;
  for (; n < cap; ++n) {
    void* m = mmap(nullptr, page, n % 2 ? PROT_READ : PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) break;
    maps[n] = m;
  }
  for (size_t i = 0; i < headroom && i < n; ++i) munmap(maps[n - 1 - i], page);
  std::fprintf(stderr, "child: %zu mappings made, %zu given back\n", n, headroom);
}

void allocate_until_refused() {
  bool full = getenv("KM_SECURE_FULL") != nullptr;
  if (!full) fill_the_mapping_table(600);
  const size_t n = 200, limit = size_t(8) << 30;
  size_t cap = limit / 256;
  auto** blocks = static_cast<void**>(mmap(nullptr, cap * sizeof(void*), PROT_READ | PROT_WRITE,
                                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
  if (blocks == MAP_FAILED) _exit(10);
  size_t count = 0;
  int err = 0;
  for (; count < cap; ++count) {
    errno = 0;
    void* p = malloc(n);
    if (!p) {
      err = errno;
      break;
    }
    static_cast<char*>(p)[0] = 1;
    blocks[count] = p;
  }
  std::fprintf(stderr, "child: %zu blocks of %zu bytes (%zu MiB), then errno %d\n", count, n,
               count * n >> 20, err);
  if (count == cap) _exit(0);   // 8 GiB fit: nothing refused
  if (err != ENOMEM) _exit(11);
  // Every entry point fails the same way, or works, without a crash.
  errno = 0;
  void* big = malloc(1 << 20);
  if (!big && errno != ENOMEM) _exit(12);
  void* c = calloc(1, 3000);
  if (!c && errno != ENOMEM) _exit(13);
  void* a = nullptr;
  int rc = posix_memalign(&a, 4096, 5000);
  if (rc != 0 && rc != ENOMEM) _exit(14);
  free(big);
  free(c);
  free(a);
  // Freeing gives guards (and mappings) back: allocation works again.
  for (size_t i = 0; i < count; ++i) free(blocks[i]);
  malloc_trim(0);
  for (int i = 0; i < 1000; ++i) {
    void* p = malloc(n);
    if (!p) _exit(15);
    std::memset(p, 2, n);
    free(p);
  }
  _exit(0);
}

TEST(SecureHeap, PastTheMappingLimitAllocationFailsCleanlyWithOneLine) {
  ChildResult r = run_child(allocate_until_refused);
  RecordProperty("child_stderr", r.err);
  std::printf("%s", r.err.c_str());
  ASSERT_TRUE(WIFEXITED(r.status)) << "the child crashed (status " << r.status << ")\n" << r.err;
  EXPECT_EQ(WEXITSTATUS(r.status), 0) << r.err;
  const char* line = "secure mode: too many guard pages (vm.max_map_count)";
  size_t lines = 0;
  for (size_t at = r.err.find(line); at != std::string::npos; at = r.err.find(line, at + 1)) ++lines;
  if (r.err.find("then errno") != std::string::npos && r.err.find("then errno 0") == std::string::npos)
    EXPECT_EQ(lines, 1u) << r.err;
  else
    EXPECT_EQ(lines, 0u) << r.err;
}

// ---- the always-on checks still work in secure mode

TEST(SecureDeathTest, DoubleFreeIsStillCaught) {
  EXPECT_DEATH(
      {
        void* p = malloc(64);
        free(p);
        free(p);
      },
      "free\\(\\): double free");
}

TEST(SecureDeathTest, DoubleFreeOfALargeBlockIsStillCaught) {
  EXPECT_DEATH(
      {
        void* p = malloc(1 << 20);
        free(p);
        free(p);
      },
      "free\\(\\): invalid pointer");
}

TEST(SecureDeathTest, InteriorPointerIsStillCaught) {
  EXPECT_DEATH(
      {
        char* p = static_cast<char*>(malloc(64));
        free(p + 16);
      },
      "free\\(\\): invalid pointer");
}

// ---- and the allocator still does its job

TEST(Secure, CallocReallocAndAlignedCallsWork) {
  auto* p = static_cast<unsigned char*>(calloc(100, 3));
  for (int i = 0; i < 300; ++i) ASSERT_EQ(p[i], 0);
  for (int i = 0; i < 300; ++i) p[i] = static_cast<unsigned char>(i);
  for (size_t to : {size_t(310), size_t(5000), size_t(300000), size_t(600)}) {
    p = static_cast<unsigned char*>(realloc(p, to));
    ASSERT_NE(p, nullptr);
    for (int i = 0; i < 300; ++i) ASSERT_EQ(p[i], static_cast<unsigned char>(i)) << to;
    EXPECT_GE(malloc_usable_size(p), to);
  }
  free(p);
  for (size_t a : {size_t(32), size_t(256), size_t(4096), size_t(1) << 16}) {
    void* q = aligned_alloc(a, 100);
    ASSERT_NE(q, nullptr);
    EXPECT_EQ(addr(q) % a, 0u);
    std::memset(q, 1, 100);
    free(q);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const char* s = getenv("KMALLOC_SECURE");
  if (!s || std::strcmp(s, "1") != 0) {
    setenv("KMALLOC_SECURE", "1", 1);
    execv("/proc/self/exe", argv);
    std::perror("execv");
    return 2;
  }
  ::testing::InitGoogleTest(&argc, argv);
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  return RUN_ALL_TESTS();
}
