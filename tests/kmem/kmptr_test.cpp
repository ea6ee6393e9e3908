// The generic kmptr functions: kmfree, kmshred, kmstat, kmtaint, kmzero, kmozero, kmcopy, kmdup.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kmalloc.h"
#include "support.h"

namespace {

using kmtest::all_zero;
using kmtest::free_cells;

TEST(Kmptr, Stat) {
  int x = 5;
  kmptr p = kmstat(&x);
  EXPECT_EQ(p.kind, kmkind_none);
  EXPECT_EQ(p.shred, kmshred_no);
  EXPECT_EQ(p.ref, &x);
  EXPECT_EQ(p.cell, nullptr);
  kmfree(p);  // ignored: static memory
  kmshred(p);
  EXPECT_EQ(x, 5);
}

TEST(Kmptr, FreeDispatchesOnKind) {
  kmpool* pool = kmpooli(nullptr, 128, 3);
  kmcell* src = reinterpret_cast<kmcell*>(pool);
  kmptr a = kmpoolao(pool);
  kmptr r = kmrefao(src, 64);
  kmptr t = kmtreeao(src, nullptr, 32);
  ASSERT_TRUE(a.ref && r.ref && t.ref);
  EXPECT_EQ(free_cells(pool), 0u);
  kmfree(a);
  EXPECT_EQ(free_cells(pool), 1u);
  kmrefu(r.ref);
  kmfree(r);  // a downref: still alive
  EXPECT_EQ(free_cells(pool), 1u);
  kmfree(r);
  EXPECT_EQ(free_cells(pool), 2u);
  kmfree(t);
  EXPECT_EQ(free_cells(pool), 3u);
  kmpoolx(pool);
  kmfree(kmheapao(10));
  // Lin memory is not freed one by one; a lin kmptr is ignored and kmlinx still works.
  void* mark = kmlini();
  kmptr l{kmkind_lin, kmshred_no, kmlina(64), nullptr};
  kmfree(l);
  EXPECT_EQ(kmlini(), static_cast<char*>(mark) + 64);
  kmlinx(mark);
  // Arena: the large block goes at once; fifo: the oldest chunk.
  kmarena* ar = kmarenai(64);
  kmptr big{kmkind_arena, kmshred_no, kmarenaa(ar, 1000), reinterpret_cast<kmcell*>(ar)};
  kmfree(big);
  kmarenax(ar);
  kmfifo* q = kmfifoi(64, 0);
  kmptr f{kmkind_fifo, kmshred_no, kmfifoa(q, 10), reinterpret_cast<kmcell*>(q)};
  kmfree(f);
  size_t n;
  char buf[16];
  EXPECT_EQ(kmfifoshift(q, buf, &n, sizeof buf), ENOENT);
  kmfifox(q);
}

TEST(Kmptr, ShredAndTaintLeaveZeros) {
  kmpool* pool = kmpooli(nullptr, 128, 4);
  kmcell* src = reinterpret_cast<kmcell*>(pool);
  kmptr a = kmpoolao(pool);
  std::memset(a.ref, 0x99, 128);
  kmshred(a);
  EXPECT_TRUE(all_zero(a.ref, 128));
  kmptr r = kmrefao(src, 96);
  std::memset(r.ref, 0x99, 96);
  kmtaint(&r);
  EXPECT_EQ(r.shred, kmshred_yes);
  kmfree(r);  // tainted: kmfree shreds
  EXPECT_TRUE(all_zero(r.ref, 96));
  kmptr t = kmtreeao(src, nullptr, 64);
  std::memset(t.ref, 0x99, 64);
  kmshred(t);
  EXPECT_TRUE(all_zero(t.ref, 64));
  // Without a taint, kmfree leaves the bytes alone (so the checks above can fail).
  kmptr u = kmpoolao(pool);
  std::memset(u.ref, 0x99, 128);
  kmfree(u);
  EXPECT_EQ(static_cast<unsigned char*>(u.ref)[127], 0x99);
  errno = 0;
  kmtaint(nullptr);
  EXPECT_EQ(errno, EINVAL);
  kmpoolx(pool);
}

TEST(Kmptr, ZeroAndCopy) {
  unsigned char buf[100];
  std::memset(buf, 1, sizeof buf);
  kmzero(buf + 10, 80);
  EXPECT_EQ(buf[9], 1);
  EXPECT_TRUE(all_zero(buf + 10, 80));
  EXPECT_EQ(buf[90], 1);
  kmzero(nullptr, 0);
  errno = 0;
  kmzero(nullptr, 8);
  EXPECT_EQ(errno, EINVAL);
  char s[16] = "abcdefgh";
  kmcopy(s + 2, s, 6);  // overlapping
  EXPECT_STREQ(s, "ababcdef");
  kmcopy(nullptr, nullptr, 0);
  errno = 0;
  kmcopy(nullptr, s, 3);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  kmcopy(s, nullptr, 3);
  EXPECT_EQ(errno, EINVAL);
}

TEST(Kmptr, Ozero) {
  kmptr h = kmheapao(40);
  std::memset(h.ref, 7, 40);
  kmozero(h);
  EXPECT_TRUE(all_zero(h.ref, 40));
  kmfree(h);
  kmptr r = kmrefao(nullptr, 33);
  std::memset(r.ref, 7, 33);
  kmozero(r);
  EXPECT_TRUE(all_zero(r.ref, 33));
  kmfree(r);
  kmpool* pool = kmpooli(nullptr, 50, 1);
  kmptr c = kmpoolao(pool);
  std::memset(c.ref, 7, 50);
  kmozero(c);
  EXPECT_TRUE(all_zero(c.ref, 50));
  kmpoolx(pool);
  kmptr t = kmtreeao(nullptr, nullptr, 70);
  std::memset(t.ref, 7, 70);
  kmozero(t);
  EXPECT_TRUE(all_zero(t.ref, 70));
  kmfree(t);
  int x = 3;
  errno = 0;
  kmozero(kmstat(&x));  // no size is known for a static object
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(x, 3);
}

TEST(Kmptr, DupIsASibling) {
  kmptr h = kmheapao(64);
  std::memset(h.ref, 0x42, 64);
  kmptr hd = kmdup(h);
  EXPECT_EQ(hd.kind, kmkind_heap);
  ASSERT_NE(hd.ref, nullptr);
  EXPECT_NE(hd.ref, h.ref);
  EXPECT_EQ(std::memcmp(hd.ref, h.ref, 64), 0);
  kmfree(h);
  kmfree(hd);

  kmpool* pool = kmpooli(nullptr, 128, 2);
  kmptr c = kmpoolao(pool);
  std::memset(c.ref, 0x43, 128);
  kmptr cd = kmdup(c);
  EXPECT_EQ(cd.kind, kmkind_pool);
  EXPECT_EQ(cd.cell, c.cell);  // same pool
  ASSERT_NE(cd.ref, nullptr);
  EXPECT_EQ(std::memcmp(cd.ref, c.ref, 128), 0);
  EXPECT_EQ(kmdup(c).ref, nullptr);  // the pool is full now
  kmfree(cd);
  kmfree(c);

  kmcell* src = reinterpret_cast<kmcell*>(pool);
  kmptr r = kmrefao(src, 64);
  std::memset(r.ref, 0x44, 64);
  kmtaint(&r);
  kmptr rd = kmdup(r);
  EXPECT_EQ(rd.kind, kmkind_ref);
  EXPECT_EQ(rd.shred, kmshred_yes);  // the taint is copied
  ASSERT_NE(rd.ref, nullptr);
  EXPECT_EQ(std::memcmp(rd.ref, r.ref, 64), 0);
  EXPECT_EQ(free_cells(pool), 0u);  // drawn from the same pool
  kmfree(rd);  // one reference: freed
  EXPECT_EQ(free_cells(pool), 1u);
  kmfree(r);
  kmpoolx(pool);

  void* root = kmtreea(nullptr, nullptr, 16);
  kmptr kid = kmtreeao(nullptr, root, 24);
  std::memset(kid.ref, 0x45, 24);
  kmptr sib = kmdup(kid);
  EXPECT_EQ(sib.kind, kmkind_tree);
  ASSERT_NE(sib.ref, nullptr);
  EXPECT_EQ(std::memcmp(sib.ref, kid.ref, 24), 0);
  // The sibling has the same parent: freeing the root frees it too (checked in a pool below).
  kmtreef(root);

  kmpool* tp = kmpooli(nullptr, 64 + 16, 3);
  kmcell* tsrc = reinterpret_cast<kmcell*>(tp);
  void* troot = kmtreea(tsrc, nullptr, 16);
  kmptr tkid = kmtreeao(tsrc, troot, 16);
  kmptr tsib = kmdup(tkid);
  ASSERT_NE(tsib.ref, nullptr);
  EXPECT_EQ(free_cells(tp), 0u);
  kmtreef(troot);
  EXPECT_EQ(free_cells(tp), 3u);
  kmpoolx(tp);

  int x = 1;
  errno = 0;
  kmptr sd = kmdup(kmstat(&x));
  EXPECT_EQ(sd.ref, nullptr);
  EXPECT_EQ(sd.kind, kmkind_none);
  EXPECT_EQ(errno, EINVAL);
}

}  // namespace
