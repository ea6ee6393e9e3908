// The heap method and reference-counted cells.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "kmalloc.h"
#include "support.h"

namespace {

using kmtest::all_zero;

TEST(Heap, AllocZeroFree) {
  void* p = kmheapa(100);
  ASSERT_NE(p, nullptr);
  EXPECT_GE(km_usable_size(p), 100u);
  std::memset(p, 0xCD, 100);
  kmheapf(p);
  unsigned char* z = static_cast<unsigned char*>(kmheapz(5000));
  ASSERT_NE(z, nullptr);
  EXPECT_TRUE(all_zero(z, 5000));
  kmheapf(z);
  kmptr a = kmheapao(64);
  EXPECT_EQ(a.kind, kmkind_heap);
  EXPECT_EQ(a.shred, kmshred_no);
  EXPECT_EQ(a.cell, nullptr);
  ASSERT_NE(a.ref, nullptr);
  kmfree(a);
  kmptr b = kmheapzo(64);
  EXPECT_EQ(b.kind, kmkind_heap);
  ASSERT_NE(b.ref, nullptr);
  EXPECT_TRUE(all_zero(b.ref, 64));
  kmfree(b);
  kmheapf(nullptr);
  kmheaps(nullptr);
}

TEST(Heap, Overflow) {
  errno = 0;
  EXPECT_EQ(kmheapa(SIZE_MAX), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  kmptr p = kmheapao(SIZE_MAX - 8);
  EXPECT_EQ(p.ref, nullptr);
  EXPECT_EQ(p.kind, kmkind_none);
}

TEST(Heap, ShredZeroesBeforeFree) {
  // Freed lane cells come back from later requests of the same size; the ones that do must hold the
  // zeros kmheaps left past the allocator's free-list link (kmheapa itself does not clear memory).
  std::vector<unsigned char*> cells;
  for (int i = 0; i < 64; i++) {
    unsigned char* p = static_cast<unsigned char*>(kmheapa(256));
    ASSERT_NE(p, nullptr);
    std::memset(p, 0xAB, 256);
    cells.push_back(p);
  }
  for (unsigned char* p : cells) kmheaps(p);
  std::vector<void*> again;
  int checked = 0;
  for (int i = 0; i < 512; i++) {
    unsigned char* q = static_cast<unsigned char*>(kmheapa(256));
    again.push_back(q);
    for (unsigned char* p : cells) {
      if (p == q) {
        EXPECT_TRUE(all_zero(q + 16, 256 - 16));
        checked++;
      }
    }
  }
  for (void* q : again) kmheapf(q);
  EXPECT_GT(checked, 0) << "no freed cell was handed out again";
}

TEST(Ref, CountsAndFrees) {
  kmpool* pool = kmpooli(nullptr, 64 + 32, 4);  // a source that lets us count live cells
  ASSERT_NE(pool, nullptr);
  kmcell* src = reinterpret_cast<kmcell*>(pool);
  void* r = kmrefa(src, 64);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(r) & 15, 0u);
  std::memset(r, 7, 64);
  EXPECT_EQ(kmrefu(r), r);
  EXPECT_EQ(kmrefu(r), r);  // three references
  kmreff(r);
  kmreff(r);
  EXPECT_EQ(static_cast<unsigned char*>(r)[63], 7);  // still alive with one reference
  // Three more cells fill the pool; the fourth request fails because r still holds one.
  void* x[3];
  for (auto& c : x) ASSERT_NE(c = kmrefa(src, 64), nullptr);
  errno = 0;
  EXPECT_EQ(kmrefa(src, 64), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  kmreff(r);  // the last reference: the cell goes back to the pool
  void* again = kmrefa(src, 64);
  EXPECT_NE(again, nullptr);
  kmreff(again);
  for (auto& c : x) kmreff(c);
  kmpoolx(pool);
}

TEST(Ref, ZeroAndPointerObjects) {
  void* z = kmrefz(nullptr, 300);
  ASSERT_NE(z, nullptr);
  EXPECT_TRUE(all_zero(z, 300));
  kmreff(z);
  kmptr a = kmrefao(nullptr, 10);
  EXPECT_EQ(a.kind, kmkind_ref);
  ASSERT_NE(a.ref, nullptr);
  ASSERT_NE(a.cell, nullptr);
  kmptr b = kmrefzo(nullptr, 10);
  EXPECT_EQ(b.kind, kmkind_ref);
  EXPECT_TRUE(all_zero(b.ref, 10));
  kmfree(a);
  kmfree(b);
}

TEST(Ref, ShredOnLastReference) {
  kmpool* pool = kmpooli(nullptr, 32 + 128, 1);
  ASSERT_NE(pool, nullptr);
  void* r = kmrefa(reinterpret_cast<kmcell*>(pool), 128);
  ASSERT_NE(r, nullptr);
  kmrefu(r);
  std::memset(r, 0x5A, 128);
  kmrefs(r);  // marks for shredding, one reference left: contents stay
  EXPECT_EQ(static_cast<unsigned char*>(r)[0], 0x5A);
  kmreff(r);  // the last reference shreds, even through kmreff
  // The pool's storage is alive, so reading the released cell is defined: it must be zero.
  EXPECT_TRUE(all_zero(r, 128));
  kmpoolx(pool);
}

TEST(Ref, BadInput) {
  errno = 0;
  EXPECT_EQ(kmrefa(nullptr, 0), nullptr);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(kmrefa(nullptr, SIZE_MAX - 8), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(kmrefu(nullptr), nullptr);
  EXPECT_EQ(errno, EINVAL);
  alignas(16) unsigned char junk[128] = {};
  kmcell* bad = reinterpret_cast<kmcell*>(junk);
  errno = 0;
  EXPECT_EQ(kmrefz(bad, 8), nullptr);  // not a pool or arena
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(kmrefu(junk + 64), nullptr);  // not a ref cell
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  kmreff(junk + 64);
  EXPECT_EQ(errno, EINVAL);
  kmreff(nullptr);
  kmrefs(nullptr);
  // Too big for the pool source's cells.
  kmpool* pool = kmpooli(nullptr, 64, 2);
  errno = 0;
  EXPECT_EQ(kmrefa(reinterpret_cast<kmcell*>(pool), 64), nullptr);
  EXPECT_EQ(errno, EINVAL);
  kmpoolx(pool);
}

TEST(Ref, AtomicAcrossThreads) {
  // 4 threads up- and down-ref one cell concurrently; a lost update would free it early (the pool
  // below then hands it out again) or never (the final count check fails).
  kmpool* pool = kmpooli(nullptr, 32 + 16, 2);
  kmcell* src = reinterpret_cast<kmcell*>(pool);
  void* r = kmrefz(src, 16);
  ASSERT_NE(r, nullptr);
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; t++) {
    ts.emplace_back([r] {
      for (int i = 0; i < 200000; i++) {
        kmrefu(r);
        kmreff(r);
      }
    });
  }
  for (auto& t : ts) t.join();
  // Exactly one reference is left: the cell is still out, so the 2-cell pool has one cell free.
  void* other = kmpoola(pool);
  EXPECT_NE(other, nullptr);
  errno = 0;
  EXPECT_EQ(kmpoola(pool), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  kmreff(r);
  EXPECT_NE(kmpoola(pool), nullptr);  // now it is back
  kmpoolx(pool);
}

}  // namespace
