// heap.cpp — the heap method: kmalloc's lane allocator under kmem names.
#include "kmem/cell.h"

using namespace km::kmem;

extern "C" KM_EXPORT void* kmheapa(size_t n) { return km_malloc(n); }
extern "C" KM_EXPORT void* kmheapz(size_t n) { return km_calloc(1, n); }

extern "C" KM_EXPORT kmptr kmheapao(size_t n) {
  void* p = km_malloc(n);
  return kmptr{p ? kmkind_heap : kmkind_none, kmshred_no, p, nullptr};
}

extern "C" KM_EXPORT kmptr kmheapzo(size_t n) {
  void* p = km_calloc(1, n);
  return kmptr{p ? kmkind_heap : kmkind_none, kmshred_no, p, nullptr};
}

extern "C" KM_EXPORT void kmheapf(void* p) { km_free(p); }

// Zero the whole usable block, then free it.
extern "C" KM_EXPORT void kmheaps(void* p) {
  if (p == nullptr) return;
  zero_explicit(p, km_usable_size(p));
  km_free(p);
}
