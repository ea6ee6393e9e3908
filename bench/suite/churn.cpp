// churn — random-size alloc/free churn, in one thread or in N independent threads.
//
// Stresses: the small/medium fast paths and the free-list recycling of a heap with a steady live set,
// (with --threads N) per-thread heaps that must not contend. Each thread owns a table of `live` slots;
// every step replaces a random slot's block with a new one of random size (mostly small, some up to
// 32 KiB), so blocks die in random order and the allocator must reuse holes. Blocks are stamped at
// both ends and checked before they are freed.
//
// Work is per thread (weak scaling): N threads do N times the operations of one.
#include <thread>

#include "common.hpp"

namespace {

struct Slot {
  void* p;
  size_t n;
  uint64_t tag;
};

// Mostly small, with a tail: 60% 8-128 B, 25% 129 B-1 KiB, 12% 1-8 KiB, 3% 8-32 KiB.
size_t pick_size(kmb::Rng& r) {
  const uint64_t c = r.below(100);
  if (c < 60) return r.range(8, 128);
  if (c < 85) return r.range(129, 1024);
  if (c < 97) return r.range(1025, 8192);
  return r.range(8193, 32768);
}

bool run_thread(int id, long steps, long live, kmb::StartLine& start) {
  kmb::Rng rng(0xC0FFEEull + static_cast<uint64_t>(id) * 7919);
  // The slot table is the workload's own structure; allocate it before the start line.
  auto* slots = static_cast<Slot*>(std::calloc(static_cast<size_t>(live), sizeof(Slot)));
  bool ok = slots != nullptr;
  start.arrive_and_wait();
  for (long i = 0; i < steps && ok; ++i) {
    Slot& s = slots[rng.below(static_cast<uint64_t>(live))];
    if (s.p) {
      ok &= kmb::verify(s.p, s.n, s.tag);
      std::free(s.p);
    }
    s.n = pick_size(rng);
    s.tag = rng.next();
    s.p = std::malloc(s.n);
    if (!s.p) return false;
    kmb::stamp(s.p, s.n, s.tag);
  }
  for (long i = 0; i < live; ++i) {
    if (!slots[i].p) continue;
    ok &= kmb::verify(slots[i].p, slots[i].n, slots[i].tag);
    std::free(slots[i].p);
  }
  std::free(slots);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  kmb::Args args(argc, argv, {"threads", "steps", "live"});
  const int threads = static_cast<int>(args.num("threads", 1, 1));
  const long steps = args.num("steps", 12'000'000, 20'000, true);  // per thread
  const long live = args.num("live", 4096, 256);                     // slots per thread
  if (threads < 1 || live < 1) return 64;

  bool all;
  const double secs = kmb::run_timed(
      threads, [&](int t, kmb::StartLine& start) { return run_thread(t, steps, live, start); }, &all);
  // Each step is one malloc and (after warm-up) one free; the final teardown frees `live` more.
  const double ops = 2.0 * static_cast<double>(steps) * threads;
  return kmb::report(threads == 1 ? "churn" : "churn-mt", threads, ops, secs, all);
}
