// The resettable memory pool (arena): linear carving, large blocks, reset, destroy.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kmalloc.h"

namespace {

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

TEST(Arena, CarvesLinearly) {
  kmarena* a = kmarenai(4096);
  ASSERT_NE(a, nullptr);
  char* p = static_cast<char*>(kmarenaa(a, 10));
  char* q = static_cast<char*>(kmarenaa(a, 10));
  ASSERT_TRUE(p && q);
  EXPECT_TRUE(aligned16(p) && aligned16(q));
  EXPECT_EQ(q, p + 16);
  char* u = static_cast<char*>(kmarenan(a, 3));  // unaligned: packed right after q's 10 bytes
  char* v = static_cast<char*>(kmarenan(a, 5));
  EXPECT_EQ(u, q + 10);
  EXPECT_EQ(v, u + 3);
  char* w = static_cast<char*>(kmarenaa(a, 1));
  EXPECT_TRUE(aligned16(w));
  EXPECT_EQ(w, q + 32);
  unsigned char* z = static_cast<unsigned char*>(kmarenaz(a, 100));
  for (int i = 0; i < 100; i++) ASSERT_EQ(z[i], 0);
  kmarenax(a);
}

TEST(Arena, ManyBlocksNoOverlapAndResetRewinds) {
  kmarena* a = kmarenai(1024);
  std::vector<unsigned char*> v;
  for (int i = 0; i < 10000; i++) {
    size_t n = 1 + (i * 31) % 200;
    unsigned char* p = static_cast<unsigned char*>(kmarenaa(a, n));
    ASSERT_NE(p, nullptr);
    std::memset(p, i & 0xff, n);
    v.push_back(p);
  }
  for (int i = 0; i < 10000; i++) {
    size_t n = 1 + (i * 31) % 200;
    ASSERT_EQ(v[i][0], i & 0xff);
    ASSERT_EQ(v[i][n - 1], i & 0xff);
  }
  kmarenar(a);
  // After a reset the same sequence of requests gets the same addresses: blocks were kept, rewound.
  for (int i = 0; i < 10000; i++) {
    size_t n = 1 + (i * 31) % 200;
    ASSERT_EQ(kmarenaa(a, n), v[i]) << i;
  }
  kmarenax(a);
}

TEST(Arena, LargeBlocksFreedAtOnce) {
  kmarena* a = kmarenai(256);
  void* small = kmarenaa(a, 256);  // exactly a block: not large
  void* big1 = kmarenaa(a, 100000);
  void* big2 = kmarenan(a, 257);
  void* big3 = kmarenaz(a, 5000);
  ASSERT_TRUE(small && big1 && big2 && big3);
  EXPECT_TRUE(aligned16(big1) && aligned16(big2));
  std::memset(big1, 1, 100000);
  std::memset(big2, 2, 257);
  kmarenaf(a, big2);   // middle of the list
  kmarenaf(a, small);  // small: ignored until reset
  kmarenaf(a, nullptr);
  kmarenaf(a, big1);
  kmarenaf(a, big3);
  // kmarenaf of another arena's large block is ignored.
  kmarena* b = kmarenai(256);
  void* theirs = kmarenaa(b, 4096);
  kmarenaf(a, theirs);
  std::memset(theirs, 3, 4096);
  kmarenar(b);  // frees it
  void* big4 = kmarenaa(a, 9999);
  ASSERT_NE(big4, nullptr);
  kmarenar(a);  // frees big4
  kmarenax(a);
  kmarenax(b);
}

TEST(Arena, BadInput) {
  errno = 0;
  EXPECT_EQ(kmarenai(0), nullptr);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(kmarenai(SIZE_MAX), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(kmarenaa(nullptr, 8), nullptr);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(kmarenan(nullptr, 8), nullptr);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(kmarenaz(nullptr, 8), nullptr);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  kmarenar(nullptr);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  kmarenax(nullptr);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  kmarenaf(nullptr, nullptr);
  EXPECT_EQ(errno, EINVAL);
  kmarena* a = kmarenai(64);
  errno = 0;
  EXPECT_EQ(kmarenaa(a, 0), nullptr);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(kmarenaa(a, SIZE_MAX - 8), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(kmarenan(a, SIZE_MAX), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  // A pool is not an arena.
  kmpool* pool = kmpooli(nullptr, 16, 1);
  errno = 0;
  EXPECT_EQ(kmarenaa(reinterpret_cast<kmarena*>(pool), 8), nullptr);
  EXPECT_EQ(errno, EINVAL);
  kmpoolx(pool);
  kmarenax(a);
}

}  // namespace
