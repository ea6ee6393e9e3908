// inv-square — a working set of 1024 blocks per thread with inverse-square sizes, 4 B–32 KiB.
//
// Stresses: the smallest size classes at full rate with a rare medium block (issue 12). Sizes follow
// the density 1/s² on [min, max] (half the blocks are under 8 bytes, one in a hundred over 400), drawn
// by inverting the distribution function. Each of T threads (default 2) keeps its own working set of
// `live` blocks and replaces a random one at every step, so the allocator serves each thread from its
// own heap without sharing. Blocks are stamped (every byte of the small ones) and checked before they
// are freed.
//
// Work is per thread (weak scaling).
#include "common.hpp"

namespace {

struct Slot {
  void* p;
  size_t n;
  uint64_t tag;
};

// Inverse of F(s) = (1/lo - 1/s) / (1/lo - 1/hi), the distribution function of density ∝ 1/s².
size_t inv_square(kmb::Rng& r, double lo, double hi) {
  const double u = static_cast<double>(r.next() >> 11) * 0x1.0p-53;
  const double s = 1.0 / (1.0 / lo - u * (1.0 / lo - 1.0 / hi));
  const auto n = static_cast<size_t>(s);
  return n < lo ? static_cast<size_t>(lo) : n > hi ? static_cast<size_t>(hi) : n;
}

bool run_thread(int id, long steps, long live, double lo, double hi, kmb::StartLine& start) {
  kmb::Rng rng(0x1A5C0ull + static_cast<uint64_t>(id) * 7919);
  auto* slots = static_cast<Slot*>(std::calloc(static_cast<size_t>(live), sizeof(Slot)));
  bool ok = slots != nullptr;
  start.arrive_and_wait();
  for (long i = 0; i < steps && ok; ++i) {
    Slot& s = slots[rng.below(static_cast<uint64_t>(live))];
    if (s.p) {
      ok &= kmb::verify(s.p, s.n, s.tag);
      std::free(s.p);
    }
    s.n = inv_square(rng, lo, hi);
    s.tag = rng.next();
    s.p = std::malloc(s.n);
    if (!s.p) return false;
    kmb::stamp(s.p, s.n, s.tag);
  }
  for (long i = 0; i < live; ++i)
    if (slots[i].p) {
      ok &= kmb::verify(slots[i].p, slots[i].n, slots[i].tag);
      std::free(slots[i].p);
    }
  std::free(slots);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  kmb::Args args(argc, argv, {"threads", "steps", "live", "min", "max"});
  const int threads = static_cast<int>(args.num("threads", 2, 2));
  const long steps = args.num("steps", 15'000'000, 20'000, true);  // per thread
  const long live = args.num("live", 1024, 1024);                   // blocks per thread
  const long lo = args.num("min", 4, 4), hi = args.num("max", 32 << 10, 32 << 10);
  if (threads < 1 || live < 1 || lo < 1 || hi < lo) return 64;

  bool all;
  const double secs = kmb::run_timed(
      threads,
      [&](int t, kmb::StartLine& start) {
        return run_thread(t, steps, live, static_cast<double>(lo), static_cast<double>(hi), start);
      },
      &all);
  return kmb::report("inv-square", threads, 2.0 * static_cast<double>(steps) * threads, secs, all);
}
