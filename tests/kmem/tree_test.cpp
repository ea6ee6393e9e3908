// Hierarchical allocation: freeing a node frees every descendant, iteratively.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "kmalloc.h"
#include "support.h"

namespace {

using kmtest::all_zero;
using kmtest::free_cells;

constexpr size_t kNode = 64;  // km::tree_overhead: the header kmem puts before a node's data

TEST(Tree, FreeReachesEveryDescendantCounted) {
  // A random tree of 5,000 nodes drawn from a pool of exactly that many cells: after freeing the
  // root every cell is free again, so every descendant was reached, and no cell was freed twice.
  const size_t n = 5000;
  kmpool* pool = kmpooli(nullptr, kNode + 16, n);
  kmcell* src = reinterpret_cast<kmcell*>(pool);
  std::mt19937 rng(42);
  std::vector<void*> nodes;
  nodes.push_back(kmtreea(src, nullptr, 16));
  ASSERT_NE(nodes[0], nullptr);
  while (nodes.size() < n) {
    void* parent = nodes[rng() % nodes.size()];
    void* c = kmtreea(src, parent, 1 + rng() % 16);
    ASSERT_NE(c, nullptr);
    nodes.push_back(c);
  }
  errno = 0;
  EXPECT_EQ(kmtreea(src, nodes[0], 16), nullptr);  // the pool is exactly full
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_EQ(free_cells(pool), 0u);
  kmtreef(nodes[0]);
  EXPECT_EQ(free_cells(pool), n);
  kmpoolx(pool);
}

TEST(Tree, FreeSubtreeKeepsTheRest) {
  kmpool* pool = kmpooli(nullptr, kNode + 16, 100);
  kmcell* src = reinterpret_cast<kmcell*>(pool);
  void* root = kmtreez(src, nullptr, 16);
  void* a = kmtreez(src, root, 16);
  void* b = kmtreez(src, root, 16);
  void* c = kmtreez(src, root, 16);
  void* b1 = kmtreez(src, b, 16);
  void* b2 = kmtreez(src, b, 16);
  void* b11 = kmtreez(src, b1, 16);
  ASSERT_TRUE(root && a && b && c && b1 && b2 && b11);
  EXPECT_EQ(free_cells(pool), 93u);
  kmtreef(b);  // the middle child and its 3 descendants
  EXPECT_EQ(free_cells(pool), 97u);
  // The rest of the tree is intact and still linked: new children attach, freeing the root gets all.
  void* c1 = kmtreea(src, c, 16);
  void* a1 = kmtreea(src, a, 16);
  ASSERT_TRUE(c1 && a1);
  kmtreef(a);  // the first child and its child
  EXPECT_EQ(free_cells(pool), 97u);
  kmtreef(root);
  EXPECT_EQ(free_cells(pool), 100u);
  kmpoolx(pool);
}

TEST(Tree, MillionNodeChainDoesNotOverflowTheStack) {
  const size_t n = 1000000;
  kmpool* pool = kmpooli(nullptr, kNode + 16, n);
  kmcell* src = reinterpret_cast<kmcell*>(pool);
  void* root = kmtreea(src, nullptr, 8);
  void* cur = root;
  for (size_t i = 1; i < n; i++) {
    cur = kmtreea(src, cur, 8);
    ASSERT_NE(cur, nullptr);
  }
  kmtreef(root);
  EXPECT_EQ(free_cells(pool), n);
  kmpoolx(pool);
  // The same shape on the heap.
  root = kmtreea(nullptr, nullptr, 8);
  cur = root;
  for (size_t i = 1; i < n; i++) cur = kmtreea(nullptr, cur, 8);
  kmtreef(root);
}

TEST(Tree, PointerObjectsAndShred) {
  kmpool* pool = kmpooli(nullptr, kNode + 64, 4);
  kmcell* src = reinterpret_cast<kmcell*>(pool);
  kmptr root = kmtreeao(src, nullptr, 64);
  EXPECT_EQ(root.kind, kmkind_tree);
  ASSERT_NE(root.ref, nullptr);
  EXPECT_NE(root.cell, nullptr);
  kmptr kid = kmtreezo(src, root.ref, 64);
  EXPECT_EQ(kid.kind, kmkind_tree);
  EXPECT_TRUE(all_zero(kid.ref, 64));
  std::memset(root.ref, 0x3C, 64);
  std::memset(kid.ref, 0x3C, 64);
  kmtaint(&root);  // a tainted node shreds its whole subtree
  kmfree(root);
  EXPECT_TRUE(all_zero(root.ref, 64));  // pool storage stays readable
  EXPECT_TRUE(all_zero(kid.ref, 64));
  EXPECT_EQ(free_cells(pool), 4u);
  kmpoolx(pool);
}

TEST(Tree, FromArena) {
  kmarena* a = kmarenai(1 << 16);
  kmcell* src = reinterpret_cast<kmcell*>(a);
  void* root = kmtreea(src, nullptr, 32);
  for (int i = 0; i < 100; i++) ASSERT_NE(kmtreea(src, root, 32), nullptr);
  kmtreef(root);
  kmarenax(a);
}

TEST(Tree, BadInput) {
  errno = 0;
  EXPECT_EQ(kmtreea(nullptr, nullptr, 0), nullptr);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(kmtreez(nullptr, nullptr, SIZE_MAX - 10), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  alignas(16) unsigned char junk[128] = {};
  errno = 0;
  EXPECT_EQ(kmtreea(nullptr, junk + 64, 8), nullptr);  // parent is not a node
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(kmtreeao(reinterpret_cast<kmcell*>(junk), nullptr, 8).ref, nullptr);  // bad source
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(kmtreezo(nullptr, nullptr, 0).kind, kmkind_none);
  errno = 0;
  kmtreef(junk + 64);
  EXPECT_EQ(errno, EINVAL);
  kmtreef(nullptr);
  // Cells of the other kinds are told apart from nodes (and from each other) by their headers.
  void* ref = kmrefa(nullptr, 8);
  void* node = kmtreea(nullptr, nullptr, 8);
  kmpool* pool = kmpooli(nullptr, 8, 1);
  void* cell = kmpoola(pool);
  errno = 0;
  kmtreef(ref);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  kmtreef(cell);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  kmreff(node);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  kmreff(cell);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  kmpoolf(ref);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  kmpoolf(node);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(kmtreea(nullptr, cell, 8), nullptr);
  EXPECT_EQ(errno, EINVAL);
  kmreff(ref);
  kmtreef(node);
  kmpoolx(pool);
}

}  // namespace
