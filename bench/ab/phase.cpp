// phase.cpp — built-in workload 2 of scripts/ab: a phase change in object sizes.
//
// Fragmentation it provokes: phase A fills the heap with small objects (16-96 bytes, like list nodes
// and short strings). Then 90% of them die at random, so nearly every small-object page keeps one or
// two survivors and none can be returned whole. Phase B allocates larger objects (256-1024 bytes, like
// buffers and tables) of about the bytes that died: a size-segregated allocator cannot put them into
// the small-object holes, and a best-fit allocator can only where whole runs died together. The heap
// then holds the sparse small pages plus the new large ones. The cycle runs twice (the second time the
// large objects die and small ones come back), as servers change load.
#include <vector>

#include "common.h"

int main(int argc, char** argv) {
  const double s = ab::scale(argc, argv);
  const size_t small_count = size_t(2500000 * s);
  ab::Rng rng(2);
  std::vector<void*> small, large;
  size_t large_bytes = 0;

  for (int cycle = 0; cycle < 2; ++cycle) {
    // Phase A: many small objects.
    while (small.size() < small_count) {
      size_t n = rng.range(16, 96);
      small.push_back(ab::take(n, 0x41));
    }
    // 90% of them die, at random; 10% survive scattered over all their pages.
    size_t kept = 0;
    for (void* p : small) {
      if (rng.chance(90)) {
        std::free(p);
      } else {
        small[kept++] = p;
      }
    }
    small.resize(kept);
    // Phase B: larger objects take the freed bytes' place.
    size_t target = small_count * 56 * 9 / 10;  // ~ the bytes that died (mean small size 56)
    while (large_bytes < target) {
      size_t n = rng.range(256, 1024);
      large.push_back(ab::take(n, 0x42));
      large_bytes += n;
    }
    // Churn among the large objects, as the new phase runs.
    for (size_t r = 0; r < large.size() * 2; ++r) {
      void*& p = large[rng.next() % large.size()];
      std::free(p);
      p = ab::take(rng.range(256, 1024), 0x43);
    }
    if (cycle == 0) {  // the next cycle starts with the large objects dying
      for (void* p : large) std::free(p);
      large.clear();
      large_bytes = 0;
    }
  }
  std::printf("phase: %zu small survivors, %zu large objects\n", small.size(), large.size());
  ab::quiet();
  return 0;
}
