// kmalloc.hpp: the RAII owners, km::allocator, and std::pmr resources over the arena and the pool.
#include <gtest/gtest.h>

#include <cstring>
#include <list>
#include <map>
#include <memory_resource>
#include <string>
#include <vector>

#include "kmalloc.hpp"

namespace {

TEST(Cpp, AllocatorInStdContainers) {
  std::vector<int, km::allocator<int>> v;
  for (int i = 0; i < 100000; i++) v.push_back(i);
  long sum = 0;
  for (int x : v) sum += x;
  EXPECT_EQ(sum, 4999950000L);
  EXPECT_TRUE(km_owns(v.data()));
  std::map<int, std::string, std::less<>, km::allocator<std::pair<const int, std::string>>> m;
  for (int i = 0; i < 1000; i++) m[i] = std::to_string(i);
  EXPECT_EQ(m[777], "777");
  struct alignas(64) Wide { char c[64]; };
  std::vector<Wide, km::allocator<Wide>> w(10);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(w.data()) % 64, 0u);
  EXPECT_TRUE(km::allocator<int>() == km::allocator<long>());
  km::allocator<int> a;
  EXPECT_THROW((void)a.allocate(SIZE_MAX / 2), std::bad_array_new_length);
}

TEST(Cpp, ArenaOwnerAndResource) {
  km::arena a(4096);
  ASSERT_TRUE(a);
  {
    km::arena_resource res(a);
    std::pmr::vector<std::pmr::string> v(&res);
    for (int i = 0; i < 1000; i++) v.emplace_back(std::string(40, static_cast<char>('a' + i % 26)));
    EXPECT_EQ(v[999][0], 'a' + 999 % 26);
    EXPECT_EQ(v.get_allocator().resource(), &res);
    std::pmr::list<int> l(&res);
    for (int i = 0; i < 1000; i++) l.push_back(i);
    EXPECT_EQ(l.back(), 999);
    struct alignas(64) Wide { char c[64]; };
    void* p = res.allocate(sizeof(Wide), alignof(Wide));
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);
    res.deallocate(p, sizeof(Wide), alignof(Wide));
  }
  a.reset();
  struct Pt { int x, y; };
  Pt* pt = a.make<Pt>(Pt{3, 4});
  EXPECT_EQ(pt->y, 4);
  km::arena b = std::move(a);
  EXPECT_FALSE(a);
  EXPECT_TRUE(b);
  EXPECT_NE(b.alloc(10), nullptr);
  EXPECT_THROW(km::arena(0), std::bad_alloc);
}

TEST(Cpp, PoolOwnerAndResource) {
  km::pool p(32, 2000);
  ASSERT_TRUE(p);
  {
    km::pool_resource res(p);
    std::pmr::list<int> l(&res);  // list nodes fit a 32-byte cell
    for (int i = 0; i < 2000; i++) l.push_back(i);
    EXPECT_EQ(kmpoola(p.get()), nullptr);  // every cell is a list node now
    EXPECT_THROW(l.push_back(1), std::bad_alloc);
    l.pop_front();
    l.push_back(2000);  // the freed node's cell is reused
    EXPECT_EQ(l.front(), 1);
    EXPECT_EQ(l.back(), 2000);
    std::pmr::vector<int> big(&res);  // bigger than a cell: from upstream
    big.resize(1000);
    EXPECT_EQ(big.size(), 1000u);
  }
  void* c = p.alloc();
  ASSERT_NE(c, nullptr);
  km::pool::free(c);
  // A pool drawn from an arena.
  km::arena a(1 << 16);
  km::pool from_arena(16, 100, a);
  ASSERT_TRUE(from_arena);
  EXPECT_NE(from_arena.alloc(), nullptr);
  EXPECT_THROW(km::pool(0, 1), std::bad_alloc);
}

TEST(Cpp, FifoOwner) {
  km::fifo q(256);
  ASSERT_TRUE(q);
  EXPECT_EQ(q.push("abc", 3), 0);
  char* r = static_cast<char*>(q.reserve(2));
  ASSERT_NE(r, nullptr);
  std::memcpy(r, "de", 2);
  char buf[8];
  size_t n = 0;
  EXPECT_EQ(q.shift(buf, sizeof buf, n), 0);
  EXPECT_EQ(n, 3u);
  EXPECT_EQ(q.free_oldest(r), 0);
  EXPECT_EQ(q.shift(buf, sizeof buf, n), ENOENT);
  EXPECT_THROW(km::fifo(100), std::bad_alloc);
}

TEST(Cpp, LinMarkReleasesOnScopeExit) {
  void* before = kmlini();
  {
    km::lin_mark m;
    EXPECT_EQ(m.mark(), before);
    EXPECT_NE(km::lin_mark::alloc(1000), nullptr);
    {
      km::lin_mark inner;
      EXPECT_NE(km::lin_mark::zalloc(500000), nullptr);
    }
    EXPECT_EQ(kmlini(), static_cast<char*>(before) + 1008);
  }
  EXPECT_EQ(kmlini(), before);
}

TEST(Cpp, PtrOwner) {
  km::pool p(64, 1);
  {
    km::ptr a(kmpoolao(p.get()));
    ASSERT_TRUE(a);
    EXPECT_EQ(p.alloc(), nullptr);
    std::memset(a.get(), 0x11, 64);
    a.taint();
  }
  void* c = p.alloc();  // freed (and shredded) by the owner
  ASSERT_NE(c, nullptr);
  for (int i = 0; i < 64; i++) ASSERT_EQ(static_cast<unsigned char*>(c)[i], 0);
  km::pool::free(c);
  km::ptr h(kmheapao(10));
  km::ptr d = h.dup();
  EXPECT_TRUE(d);
  EXPECT_NE(d.get(), h.get());
}

}  // namespace
