// zero.h — zero_explicit, the one zeroing the compiler cannot remove: secure mode's zero-on-free and
// kmem's shred both use it.
#pragma once
#include <cstddef>
#include <cstring>

namespace km {

// Zero n bytes at p (p may be null when n is 0). The empty asm claims to read the memory afterwards,
// so the stores stay even when the block is freed (or never read) next.
inline void zero_explicit(void* p, size_t n) {
  if (n == 0) return;
  std::memset(p, 0, n);
  __asm__ __volatile__("" : : "r"(p) : "memory");
}

}  // namespace km
