// support.h — helpers shared by the kmem tests.
#pragma once
#include <cstddef>
#include <vector>

#include "kmalloc.h"

namespace kmtest {

// Every one of the n bytes at p is zero.
inline bool all_zero(const void* p, size_t n) {
  const unsigned char* c = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; i++)
    if (c[i] != 0) return false;
  return true;
}

// How many cells a pool can still hand out (it is left as it was found).
inline size_t free_cells(kmpool* pool) {
  std::vector<void*> got;
  while (void* c = kmpoola(pool)) got.push_back(c);
  for (void* c : got) kmpoolf(c);
  return got.size();
}

}  // namespace kmtest
