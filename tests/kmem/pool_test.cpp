// Fixed-size pools: O(1) alloc/free, exhaustion, the pool found from the cell, sources.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <set>
#include <vector>

#include "kmalloc.h"
#include "support.h"

namespace {

using kmtest::all_zero;

TEST(Pool, ExhaustsAndRefills) {
  const size_t n = 1000;
  kmpool* pool = kmpooli(nullptr, 24, n);
  ASSERT_NE(pool, nullptr);
  std::set<void*> seen;
  std::vector<void*> cells;
  for (size_t i = 0; i < n; i++) {
    void* c = kmpoola(pool);
    ASSERT_NE(c, nullptr) << i;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(c) & 15, 0u);
    std::memset(c, static_cast<int>(i), 24);
    EXPECT_TRUE(seen.insert(c).second);
    cells.push_back(c);
  }
  errno = 0;
  EXPECT_EQ(kmpoola(pool), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  for (size_t i = 0; i < n; i++) ASSERT_EQ(static_cast<unsigned char*>(cells[i])[23], i & 0xff);  // no overlap
  for (size_t i = 0; i < n; i += 2) kmpoolf(cells[i]);  // the pool is found from the cell alone
  for (size_t i = 0; i < n; i += 2) {
    void* c = kmpoola(pool);
    ASSERT_NE(c, nullptr);
    EXPECT_TRUE(seen.count(c));  // recycled, not new memory
  }
  EXPECT_EQ(kmpoola(pool), nullptr);
  kmpoolx(pool);
}

TEST(Pool, ZeroAndPointerObjects) {
  kmpool* pool = kmpooli(nullptr, 100, 3);
  ASSERT_NE(pool, nullptr);
  void* a = kmpoola(pool);
  std::memset(a, 0xEE, 100);
  kmpoolf(a);
  void* z = kmpoolz(pool);
  ASSERT_EQ(z, a);  // LIFO: the dirty cell again
  EXPECT_TRUE(all_zero(z, 100));
  kmptr o = kmpoolao(pool);
  EXPECT_EQ(o.kind, kmkind_pool);
  EXPECT_EQ(o.cell, reinterpret_cast<kmcell*>(pool));
  ASSERT_NE(o.ref, nullptr);
  kmptr oz = kmpoolzo(pool);
  EXPECT_EQ(oz.kind, kmkind_pool);
  EXPECT_TRUE(all_zero(oz.ref, 100));
  kmptr none = kmpoolao(pool);  // exhausted
  EXPECT_EQ(none.ref, nullptr);
  EXPECT_EQ(none.kind, kmkind_none);
  kmfree(o);
  kmfree(oz);
  kmpoolf(z);
  kmpoolx(pool);
}

TEST(Pool, ShredLeavesZeros) {
  kmpool* pool = kmpooli(nullptr, 64, 2);
  unsigned char* c = static_cast<unsigned char*>(kmpoola(pool));
  std::memset(c, 0x77, 64);
  kmpools(c);
  EXPECT_TRUE(all_zero(c, 64));  // pool storage is still ours to read
  // A tainted kmptr shreds through kmfree; the cell's own flag makes a raw kmpoolf shred too.
  kmptr p = kmpoolao(pool);
  std::memset(p.ref, 0x77, 64);
  kmtaint(&p);
  EXPECT_EQ(p.shred, kmshred_yes);
  void* raw = p.ref;
  kmpoolf(raw);
  EXPECT_TRUE(all_zero(raw, 64));
  kmpoolx(pool);
}

TEST(Pool, DrawnFromArena) {
  kmarena* a = kmarenai(4096);
  ASSERT_NE(a, nullptr);
  kmcell* src = reinterpret_cast<kmcell*>(a);
  kmpool* small = kmpooli(src, 16, 8);        // fits in a block
  kmpool* big = kmpooli(src, 256, 1000);      // larger than a block: its own arena block
  ASSERT_NE(small, nullptr);
  ASSERT_NE(big, nullptr);
  std::vector<void*> v;
  for (int i = 0; i < 1000; i++) {
    void* c = kmpoola(big);
    ASSERT_NE(c, nullptr);
    std::memset(c, i, 256);
    v.push_back(c);
  }
  EXPECT_EQ(kmpoola(big), nullptr);
  for (int i = 0; i < 8; i++) ASSERT_NE(kmpoola(small), nullptr);
  EXPECT_EQ(kmpoola(small), nullptr);
  for (int i = 0; i < 1000; i++) ASSERT_EQ(static_cast<unsigned char*>(v[i])[255], i & 0xff);
  for (void* c : v) kmpoolf(c);
  kmpoolx(big);
  kmpoolx(small);
  kmarenax(a);
}

TEST(Pool, DrawnFromPool) {
  kmpool* outer = kmpooli(nullptr, 4096, 2);
  kmpool* inner = kmpooli(reinterpret_cast<kmcell*>(outer), 16, 4);
  ASSERT_NE(inner, nullptr);
  for (int i = 0; i < 4; i++) ASSERT_NE(kmpoola(inner), nullptr);
  EXPECT_EQ(kmpoola(inner), nullptr);
  errno = 0;
  EXPECT_EQ(kmpooli(reinterpret_cast<kmcell*>(outer), 4096, 4), nullptr);  // does not fit a cell
  EXPECT_EQ(errno, EINVAL);
  kmpoolx(inner);  // the outer cell comes back
  void* a = kmpoola(outer);
  void* b = kmpoola(outer);
  EXPECT_NE(a, nullptr);
  EXPECT_NE(b, nullptr);
  EXPECT_EQ(kmpoola(outer), nullptr);
  kmpoolx(outer);
}

TEST(Pool, BadInput) {
  errno = 0;
  EXPECT_EQ(kmpooli(nullptr, 0, 10), nullptr);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(kmpooli(nullptr, 10, 0), nullptr);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(kmpooli(nullptr, SIZE_MAX / 4, 8), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(kmpooli(nullptr, SIZE_MAX, 1), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(kmpooli(nullptr, 16, SIZE_MAX / 16), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(kmpoola(nullptr), nullptr);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(kmpoolz(nullptr), nullptr);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(kmpoolao(nullptr).ref, nullptr);
  EXPECT_EQ(kmpoolzo(nullptr).ref, nullptr);
  errno = 0;
  kmpoolx(nullptr);
  EXPECT_EQ(errno, EINVAL);
  kmpoolf(nullptr);
  kmpools(nullptr);
  // Double free and foreign pointers are refused.
  kmpool* pool = kmpooli(nullptr, 32, 4);
  void* c = kmpoola(pool);
  kmpoolf(c);
  errno = 0;
  kmpoolf(c);
  EXPECT_EQ(errno, EINVAL);
  void* d = kmpoola(pool);
  EXPECT_EQ(d, c);
  errno = 0;
  EXPECT_EQ(kmpoola(pool) == c, false);  // the double free did not put it on the list twice
  alignas(16) unsigned char junk[64] = {};
  errno = 0;
  kmpoolf(junk + 16);
  EXPECT_EQ(errno, EINVAL);
  std::memcpy(d, &pool, sizeof pool);  // the worst case: what looks like a header names the pool
  errno = 0;
  kmpoolf(static_cast<char*>(d) + 16);  // inside a cell, not its start
  EXPECT_EQ(errno, EINVAL);
  kmpoolx(pool);
}

}  // namespace
