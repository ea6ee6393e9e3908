// glibc's contract through the km_* names, with the core linked statically (core_dep): the same
// checks as tests/api, but runnable beside another malloc, i.e. under AddressSanitizer/UBSan and
// ThreadSanitizer builds of the core (scripts/sanitize), where -lkmalloc would fight the sanitizer's
// own malloc.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <set>
#include <vector>

#include "kmalloc.h"

namespace {

bool aligned(const void* p, size_t a) { return reinterpret_cast<uintptr_t>(p) % a == 0; }

TEST(KmApi, MallocAlignmentZeroSizeAndUsableSize) {
  std::set<void*> zeros;
  for (int i = 0; i < 50; ++i) {
    void* p = km_malloc(0);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(zeros.insert(p).second) << "malloc(0) returned a pointer twice";
  }
  for (void* p : zeros) km_free(p);
  for (size_t n = 1; n <= 300000; n = n * 5 / 4 + 1) {
    auto* p = static_cast<unsigned char*>(km_malloc(n));
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(aligned(p, 16)) << n;
    size_t u = km_usable_size(p);
    EXPECT_GE(u, n);
    std::memset(p, 0xab, u);   // the whole usable size is ours
    EXPECT_EQ(km_usable_size(p), u) << "usable size changed";
    EXPECT_TRUE(km_owns(p));
    km_free(p);
  }
  EXPECT_EQ(km_usable_size(nullptr), 0u);
}

TEST(KmApi, HugeSizesFailWithEnomemForEveryFunction) {
  const size_t huge[] = {SIZE_MAX, SIZE_MAX - 4096, size_t(PTRDIFF_MAX) + 1, size_t(1) << 50,
                         size_t(0) - 4096};
  for (size_t n : huge) {
    errno = 0;
    EXPECT_EQ(km_malloc(n), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    errno = 0;
    EXPECT_EQ(km_calloc(1, n), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    errno = 0;
    EXPECT_EQ(km_valloc(n), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    errno = 0;
    EXPECT_EQ(km_pvalloc(n), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    for (size_t a : {size_t(16), size_t(64), size_t(4096), size_t(1) << 20}) {
      errno = 0;
      EXPECT_EQ(km_aligned_alloc(a, n), nullptr);
      EXPECT_EQ(errno, ENOMEM) << a << " " << n;
      errno = 0;
      EXPECT_EQ(km_memalign(a, n), nullptr);
      EXPECT_EQ(errno, ENOMEM);
      void* out = &out;
      EXPECT_EQ(km_posix_memalign(&out, a, n), ENOMEM);
      EXPECT_EQ(out, static_cast<void*>(&out));
    }
    void* p = km_malloc(100);
    std::memset(p, 7, 100);
    errno = 0;
    EXPECT_EQ(km_realloc(p, n), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    EXPECT_EQ(static_cast<unsigned char*>(p)[99], 7);
    km_free(p);
  }
}

TEST(KmApi, CallocAndReallocarrayCatchOverflow) {
  errno = 0;
  EXPECT_EQ(km_calloc(SIZE_MAX / 2, 3), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(km_calloc(size_t(1) << 33, size_t(1) << 33), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  void* p = km_malloc(64);
  std::memset(p, 3, 64);
  errno = 0;
  EXPECT_EQ(km_reallocarray(p, SIZE_MAX / 2, 3), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_EQ(static_cast<unsigned char*>(p)[63], 3);
  void* q = km_reallocarray(p, 10, 100);
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(static_cast<unsigned char*>(q)[63], 3);
  km_free(q);
}

TEST(KmApi, CallocZeroesRecycledCellsAndBlocks) {
  for (size_t n : {size_t(16), size_t(100), size_t(5000), size_t(100000), size_t(500000)}) {
    std::vector<void*> dirty;
    for (int i = 0; i < 20; ++i) {
      void* p = km_malloc(n);
      std::memset(p, 0xff, km_usable_size(p));
      dirty.push_back(p);
    }
    for (void* p : dirty) km_free(p);
    for (int i = 0; i < 20; ++i) {
      auto* p = static_cast<unsigned char*>(km_calloc(1, n));
      ASSERT_NE(p, nullptr);
      size_t u = km_usable_size(p);
      for (size_t k = 0; k < u; ++k)
        if (p[k]) {
          ADD_FAILURE() << "calloc(" << n << ") byte " << k << " not zero";
          break;
        }
      dirty[i] = p;
    }
    for (void* p : dirty) km_free(p);
  }
}

TEST(KmApi, ReallocKeepsContentsAndHandlesNullAndZero) {
  auto* p = static_cast<unsigned char*>(km_realloc(nullptr, 10));
  ASSERT_NE(p, nullptr);
  for (int i = 0; i < 10; ++i) p[i] = static_cast<unsigned char>(i);
  size_t n = 10;
  for (size_t to : {size_t(100), size_t(5000), size_t(200000), size_t(3) << 20, size_t(70000),
                    size_t(50), size_t(9)}) {
    auto* q = static_cast<unsigned char*>(km_realloc(p, to));
    ASSERT_NE(q, nullptr);
    for (size_t i = 0; i < std::min(n, to); ++i) ASSERT_EQ(q[i], static_cast<unsigned char>(i));
    for (size_t i = 0; i < to; ++i) q[i] = static_cast<unsigned char>(i);
    p = q;
    n = to;
  }
  void* same = km_realloc(p, 8);   // shrinking within the cell stays in place
  EXPECT_EQ(same, p);
  errno = 0;
  EXPECT_EQ(km_realloc(same, 0), nullptr);   // frees
}

TEST(KmApi, AlignmentRulesAndErrors) {
  for (size_t a = 1; a <= (size_t(1) << 23); a <<= 1) {
    void* out = nullptr;
    int rc = km_posix_memalign(&out, a, 100);
    if (a < sizeof(void*)) {
      EXPECT_EQ(rc, EINVAL) << a;
      continue;
    }
    ASSERT_EQ(rc, 0) << a;
    EXPECT_TRUE(aligned(out, a)) << a;
    km_free(out);
    void* p = km_aligned_alloc(a, 3 * a);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(aligned(p, a));
    km_free(p);
    p = km_memalign(a, 1);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(aligned(p, a));
    km_free(p);
  }
  void* out = &out;
  for (size_t bad : {size_t(0), size_t(3), size_t(24), size_t(4), size_t(4097)}) {
    EXPECT_EQ(km_posix_memalign(&out, bad, 10), EINVAL) << bad;
    EXPECT_EQ(out, static_cast<void*>(&out));
  }
  for (size_t bad : {size_t(0), size_t(3), size_t(24), size_t(4097)}) {
    errno = 0;
    EXPECT_EQ(km_aligned_alloc(bad, 64), nullptr) << bad;
    EXPECT_EQ(errno, EINVAL);
  }
  errno = 0;
  EXPECT_EQ(km_memalign(SIZE_MAX / 2 + 2, 8), nullptr);
  EXPECT_EQ(errno, EINVAL);
  void* p = km_memalign(24, 10);   // odd alignments round up
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(aligned(p, 32));
  km_free(p);
  p = km_aligned_alloc(64, 100);   // size need not be a multiple
  EXPECT_NE(p, nullptr);
  km_free(p);
  p = km_valloc(1);
  EXPECT_TRUE(aligned(p, 4096));
  km_free(p);
  p = km_pvalloc(1);
  EXPECT_TRUE(aligned(p, 4096));
  EXPECT_GE(km_usable_size(p), 4096u);
  km_free(p);
  p = km_pvalloc(0);
  EXPECT_NE(p, nullptr);
  km_free(p);
}

TEST(KmApi, StatsCountWhatIsInUse) {
  km_trim(0);
  km_stats a, b, c;
  km_stats_get(&a);
  std::vector<void*> v;
  for (int i = 0; i < 1000; ++i) v.push_back(km_malloc(100));
  void* big = km_malloc(1 << 20);
  km_stats_get(&b);
  EXPECT_GE(b.in_use, a.in_use + 100 * 1000 + (1 << 20));
  EXPECT_EQ(b.large_in_use, a.large_in_use + (1 << 20));
  for (void* p : v) km_free(p);
  km_free(big);
  km_stats_get(&c);
  EXPECT_EQ(c.in_use, a.in_use);
  EXPECT_EQ(c.large_in_use, a.large_in_use);
}

}  // namespace
