// larson — a larson-style server: N threads replace random blocks in one shared table.
//
// Stresses: cross-thread free. Each step allocates a block, swaps it into a random slot of a table that
// all threads share, and frees the block it displaced — which some other thread allocated with
// probability (N-1)/N. So blocks are born on one thread's heap and die on another's, as in a server
// where a request is allocated by the reader thread and released by a worker (Larson & Krishnan, 1998).
// The table is large, so threads rarely touch the same slot and the allocator's remote-free path,
// not the table, dominates. Blocks carry self-describing stamps, checked by whoever frees them.
//
// Work is per thread (weak scaling).
#include <thread>

#include "common.hpp"

namespace {

struct Table {
  std::atomic<void*>* slots;
  long n;
};

bool run_thread(int id, Table& table, long steps, size_t min_size, size_t max_size, kmb::StartLine& start) {
  kmb::Rng rng(0x1A450Full + static_cast<uint64_t>(id) * 104729);
  bool ok = true;
  start.arrive_and_wait();
  for (long i = 0; i < steps; ++i) {
    const size_t n = rng.log_range(min_size, max_size);
    void* p = std::malloc(n);
    if (!p) return false;
    kmb::stamp_self(p, n, rng.next());
    void* old = table.slots[rng.below(static_cast<uint64_t>(table.n))].exchange(p, std::memory_order_acq_rel);
    if (old) {
      ok &= kmb::verify_self(old) != 0;
      std::free(old);
    }
  }
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  kmb::Args args(argc, argv, {"threads", "steps", "slots", "min", "max"});
  const int threads = static_cast<int>(args.num("threads", 2, 2));
  const long steps = args.num("steps", 6'000'000, 20'000, true);  // per thread
  const long nslots = args.num("slots", 16384, 512);
  const size_t min_size = static_cast<size_t>(args.num("min", 16, 16));
  const size_t max_size = static_cast<size_t>(args.num("max", 512, 512));
  if (threads < 1 || nslots < 1 || min_size < 16 || max_size < min_size || max_size >= (1u << 24)) return 64;

  Table table{new std::atomic<void*>[static_cast<size_t>(nslots)], nslots};
  // Fill the table first, as a server starts with a working set.
  kmb::Rng fill(42);
  for (long i = 0; i < nslots; ++i) {
    const size_t n = fill.log_range(min_size, max_size);
    void* p = std::malloc(n);
    kmb::stamp_self(p, n, fill.next());
    table.slots[i].store(p, std::memory_order_relaxed);
  }

  bool all;
  const double secs = kmb::run_timed(
      threads,
      [&](int t, kmb::StartLine& start) { return run_thread(t, table, steps, min_size, max_size, start); },
      &all);
  for (long i = 0; i < nslots; ++i) {
    void* p = table.slots[i].load(std::memory_order_relaxed);
    all &= kmb::verify_self(p) != 0;
    std::free(p);
  }
  delete[] table.slots;
  return kmb::report("larson", threads, 2.0 * static_cast<double>(steps) * threads, secs, all);
}
