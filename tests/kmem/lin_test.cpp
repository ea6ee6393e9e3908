// The per-thread linear stack: marks, alignment, growth across chunks, exact release.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "kmalloc.h"
#include "platform/os.h"

namespace {

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

TEST(Lin, AllocBumpsAndAligns) {
  void* mark = kmlini();
  ASSERT_NE(mark, nullptr);
  char* a = static_cast<char*>(kmlina(1));
  char* b = static_cast<char*>(kmlina(17));
  char* c = static_cast<char*>(kmlina(16));
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(a, mark);  // the first allocation starts at the mark
  EXPECT_TRUE(aligned16(a) && aligned16(b) && aligned16(c));
  EXPECT_EQ(b, a + 16);
  EXPECT_EQ(c, b + 32);
  EXPECT_EQ(kmlini(), c + 16);
  EXPECT_EQ(kmlinx(mark), mark);
  EXPECT_EQ(kmlini(), mark);
}

TEST(Lin, ZeroFills) {
  void* mark = kmlini();
  unsigned char* p = static_cast<unsigned char*>(kmlina(4096));
  std::memset(p, 0xAB, 4096);
  ASSERT_EQ(kmlinx(mark), mark);
  unsigned char* z = static_cast<unsigned char*>(kmlinz(4096));
  ASSERT_EQ(z, p);  // the same bytes again, which were dirty
  for (int i = 0; i < 4096; i++) ASSERT_EQ(z[i], 0) << i;
  kmlinx(mark);
}

TEST(Lin, ReleaseRestoresExactMarkAcrossChunks) {
  void* base = kmlini();
  std::vector<void*> marks;
  std::vector<char*> ptrs;
  // ~40 MiB in mixed sizes: many standard chunks plus chunks of their own for the big ones.
  for (int i = 0; i < 2000; i++) {
    marks.push_back(kmlini());
    size_t n = (i % 97 == 0) ? 600 * 1024 : 1 + (i * 7919) % 20000;
    char* p = static_cast<char*>(kmlina(n));
    ASSERT_NE(p, nullptr);
    ASSERT_TRUE(aligned16(p));
    std::memset(p, i & 0xff, n < 64 ? n : 64);
    ptrs.push_back(p);
  }
  // Earlier objects never move.
  for (size_t i = 0; i < ptrs.size(); i++) ASSERT_EQ(static_cast<unsigned char>(ptrs[i][0]), i & 0xff);
  // Release to marks in reverse order, in steps; each release leaves exactly that top.
  for (size_t i = marks.size(); i-- > 0;) {
    if (i % 13 != 0) continue;
    ASSERT_EQ(kmlinx(marks[i]), marks[i]);
    ASSERT_EQ(kmlini(), marks[i]);
    if (i > 0) {
      ASSERT_EQ(static_cast<unsigned char>(ptrs[i / 2][0]), (i / 2) & 0xff);  // below: intact
    }
  }
  ASSERT_EQ(kmlinx(base), base);
  EXPECT_EQ(kmlini(), base);
  // The stack is reusable after a deep release.
  void* again = kmlina(100000);
  ASSERT_NE(again, nullptr);
  kmlinx(base);
}

TEST(Lin, MarkAtFullChunkBoundary) {
  void* base = kmlini();
  // Fill up to just under the standard chunk so the next request starts a new one.
  std::vector<void*> marks;
  for (int i = 0; i < 64; i++) {
    marks.push_back(kmlini());
    ASSERT_NE(kmlina(8000), nullptr);
  }
  for (size_t i = marks.size(); i-- > 0;) {
    ASSERT_EQ(kmlinx(marks[i]), marks[i]);
    ASSERT_EQ(kmlini(), marks[i]);
  }
  kmlinx(base);
}

TEST(Lin, BadInput) {
  void* mark = kmlini();
  errno = 0;
  EXPECT_EQ(kmlina(0), nullptr);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(kmlinz(0), nullptr);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(kmlina(SIZE_MAX), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(kmlina(SIZE_MAX / 2), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(kmlinx(nullptr), nullptr);
  EXPECT_EQ(errno, EINVAL);
  // A mark above the top (never handed out) and a foreign pointer are refused, state unchanged.
  char* p = static_cast<char*>(kmlina(32));
  errno = 0;
  EXPECT_EQ(kmlinx(p + 64), nullptr);
  EXPECT_EQ(errno, EINVAL);
  int local;
  errno = 0;
  EXPECT_EQ(kmlinx(&local), nullptr);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(kmlinx(p + 1), nullptr);  // not a top: misaligned
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(kmlini(), p + 32);
  kmlinx(mark);
}

TEST(Lin, PerThread) {
  void* main_mark = kmlini();
  char* mine = static_cast<char*>(kmlina(64));
  std::memset(mine, 1, 64);
  std::vector<std::thread> ts;
  std::vector<int> ok(4, 0);
  for (int t = 0; t < 4; t++) {
    ts.emplace_back([t, &ok, main_mark] {
      // Another thread's mark is not a mark of this thread's stack.
      errno = 0;
      if (kmlinx(main_mark) != nullptr || errno != EINVAL) return;
      void* m = kmlini();
      for (int r = 0; r < 200; r++) {
        char* p = static_cast<char*>(kmlina(1000 + t));
        if (!p) return;
        std::memset(p, t, 1000 + t);
      }
      if (kmlinx(m) != m || kmlini() != m) return;
      ok[t] = 1;
    });
  }
  for (auto& t : ts) t.join();
  for (int t = 0; t < 4; t++) EXPECT_EQ(ok[t], 1) << t;
  for (int i = 0; i < 64; i++) ASSERT_EQ(mine[i], 1);
  kmlinx(main_mark);
}

}  // namespace

namespace {

TEST(Lin, ReleasedMemoryGoesBackPastTheThreshold) {
  // 64 MiB of standard chunks released at once: at most 4 MiB stay as spares, the rest is unmapped.
  void* mark = kmlini();
  km::os::Counters before = km::os::counters();
  for (int i = 0; i < 256; i++) ASSERT_NE(kmlina(256 * 1024 - 64), nullptr);
  km::os::Counters grown = km::os::counters();
  EXPECT_GE(grown.mmap_count - before.mmap_count, 200u);
  kmlinx(mark);
  km::os::Counters after = km::os::counters();
  EXPECT_GE(after.munmap_count - grown.munmap_count, 200u);
  // The spares are reused: another 2 MiB needs no new mapping.
  for (int i = 0; i < 8; i++) ASSERT_NE(kmlina(256 * 1024 - 64), nullptr);
  EXPECT_EQ(km::os::counters().mmap_count, after.mmap_count);
  kmlinx(mark);
}

}  // namespace
