// common.h — small helpers shared by the A/B workloads: a deterministic random generator, memory
// touching (an allocation that is never written is never resident, and would flatter everyone), and
// the quiet phase every workload ends with.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace ab {

// xorshift64*: the same sequence on every run and under every allocator.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1Dull;
  }
  // Uniform in [lo, hi].
  size_t range(size_t lo, size_t hi) { return lo + next() % (hi - lo + 1); }
  bool chance(unsigned percent) { return next() % 100 < percent; }
};

// malloc that writes every byte (so the memory is really used) and dies cleanly if it fails.
inline void* take(size_t n, unsigned char fill) {
  void* p = std::malloc(n);
  if (!p) {
    std::fprintf(stderr, "out of memory allocating %zu bytes\n", n);
    std::exit(1);
  }
  std::memset(p, fill, n);
  return p;
}

// The end of every workload: hold the final live set while the program is idle, so "final RSS"
// measures what the allocator keeps (and whether it gives memory back when the program goes quiet).
inline void quiet(unsigned ms = 400) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

// Scale factor from argv[1] (default 1.0), so tests can run the workloads small.
inline double scale(int argc, char** argv) {
  double s = argc > 1 ? std::atof(argv[1]) : 1.0;
  return s > 0 ? s : 1.0;
}

}  // namespace ab
