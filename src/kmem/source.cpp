// source.cpp — the one dispatch from a `kmcell *src` to the allocator behind it.
#include "kmem/cell.h"

namespace km::kmem {

bool src_ok(kmcell* src) {
  return src == nullptr || cell_is(src, kmkind_pool) || cell_is(src, kmkind_arena);
}

void* src_alloc(kmcell* src, size_t n) {
  if (src == nullptr) return km_malloc(n);
  if (cell_is(src, kmkind_arena)) return kmarenaa(reinterpret_cast<kmarena*>(src), n);
  if (cell_is(src, kmkind_pool)) {
    kmpool* pool = reinterpret_cast<kmpool*>(src);
    if (n > pool_cell_size(pool)) {
      errno = EINVAL;
      return nullptr;
    }
    return kmpoola(pool);
  }
  errno = EINVAL;
  return nullptr;
}

void src_free(kmcell* src, void* p, size_t n, bool shred) {
  if (src == nullptr) {
    if (shred) zero_explicit(p, n);
    km_free(p);
  } else if (cell_is(src, kmkind_pool)) {
    if (shred) kmpools(p); else kmpoolf(p);
  } else if (cell_is(src, kmkind_arena)) {
    if (shred) zero_explicit(p, n);
    kmarenaf(reinterpret_cast<kmarena*>(src), p);
  }
  // Otherwise the source was destroyed before this cell, and the cell's memory went with it.
}

}  // namespace km::kmem
