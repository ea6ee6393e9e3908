// tree.cpp — hierarchical allocation: freeing a node frees all its descendants, iteratively.
#include "kmem/cell.h"

namespace {

// The header in front of a tree node's data. Invariants: children form a doubly linked list from
// `child` to `lastchild` through prev/next, each with `parent` pointing here; a root has parent NULL.
// id.size is the whole node, header included; the kmcell comes last, right before the data, so
// p - 16 tells any kmem cell's kind. Trees are single-owner: no locks.
struct Node {
  kmcell* src;
  Node* parent;
  Node* child;
  Node* lastchild;
  Node* prev;
  Node* next;
  kmcell id;
};
static_assert(sizeof(Node) == 64);

using namespace km::kmem;

inline Node* header(void* p) { return static_cast<Node*>(p) - 1; }

inline Node* live(void* p) { return live_header<Node>(p, kmkind_tree); }

void* make(kmcell* src, void* parent, size_t n, bool zero) {
  Node* up = nullptr;
  if (parent != nullptr && (up = live(parent)) == nullptr) {
    errno = EINVAL;
    return nullptr;
  }
  if (n == 0 || !src_ok(src)) {
    errno = EINVAL;
    return nullptr;
  }
  size_t total;
  if (!add_size(n, sizeof(Node), &total)) {
    errno = ENOMEM;
    return nullptr;
  }
  Node* h = static_cast<Node*>(src_alloc(src, total));
  if (h == nullptr) return nullptr;
  cell_init(&h->id, kmkind_tree, total);
  h->src = src;
  h->parent = up;
  h->child = h->lastchild = h->next = nullptr;
  h->prev = up ? up->lastchild : nullptr;
  if (up) {
    if (up->lastchild) up->lastchild->next = h; else up->child = h;
    up->lastchild = h;
  }
  if (zero) std::memset(h + 1, 0, n);
  return h + 1;
}

void release(Node* h, bool shred) {
  h->id.magic = 0;
  if (shred || cell_shred(&h->id)) zero_explicit(h + 1, h->id.size - sizeof(Node));
  src_free(h->src, h, h->id.size, false);
}

inline kmptr wrap(void* p) {
  return kmptr{p ? kmkind_tree : kmkind_none, kmshred_no, p, p ? &header(p)->id : nullptr};
}

}  // namespace

namespace km::kmem {
size_t tree_size(void* p, kmcell** src, void** parent) {
  Node* h = live(p);
  if (h == nullptr) return 0;
  if (src) *src = h->src;
  if (parent) *parent = h->parent ? h->parent + 1 : nullptr;
  return h->id.size - sizeof(Node);
}
void tree_taint(void* p) {
  if (Node* h = live(p)) cell_taint(&h->id);
}
}  // namespace km::kmem

extern "C" KM_EXPORT void* kmtreea(kmcell* src, void* parent, size_t n) { return make(src, parent, n, false); }
extern "C" KM_EXPORT void* kmtreez(kmcell* src, void* parent, size_t n) { return make(src, parent, n, true); }
extern "C" KM_EXPORT kmptr kmtreeao(kmcell* src, void* parent, size_t n) { return wrap(make(src, parent, n, false)); }
extern "C" KM_EXPORT kmptr kmtreezo(kmcell* src, void* parent, size_t n) { return wrap(make(src, parent, n, true)); }

// Free node and every descendant, in post order without recursion or a stack: always descend to the
// first child, free a leaf, go on with its next sibling or, when it was the last, with its parent
// (which has just become a leaf). A tainted node shreds its whole subtree.
extern "C" KM_EXPORT void kmtreef(void* node) {
  if (node == nullptr) return;
  Node* root = live(node);
  if (root == nullptr) {
    errno = EINVAL;
    return;
  }
  if (Node* up = root->parent) {
    if (root->prev) root->prev->next = root->next; else up->child = root->next;
    if (root->next) root->next->prev = root->prev; else up->lastchild = root->prev;
  }
  bool shred = cell_shred(&root->id);
  Node* cur = root;
  for (;;) {
    while (cur->child != nullptr) cur = cur->child;
    if (cur == root) break;
    Node* up = cur->parent;
    Node* next = cur->next;  // cur is up's first child
    up->child = next;
    if (next) next->prev = nullptr; else up->lastchild = nullptr;
    release(cur, shred);
    cur = next ? next : up;
  }
  release(root, shred);
}
