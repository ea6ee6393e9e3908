// thread-churn — thousands of short-lived threads, each allocating one block and swapping it into a
// shared table.
//
// Stresses: thread creation and exit (issue 12): the allocator's per-thread set-up on a thread's first
// malloc and its tear-down at exit, with a live block that the thread leaves behind in another
// thread's table slot, and the block it takes out (born on a thread that has exited) freed remotely.
// The main thread starts `threads` threads at a time (default 2), joins them, and repeats until
// `total` threads have run; each allocates a block of log-uniform size in [min, max], stamps it,
// swaps it into a random slot of a shared table (atomic exchange) and checks and frees the block it
// took out. std::thread's own start-up record is allocated by the main thread and freed by the new
// one, as in any C++ program. Blocks carry self-describing stamps.
#include "common.hpp"

int main(int argc, char** argv) {
  kmb::Args args(argc, argv, {"threads", "total", "slots", "min", "max"});
  const int threads = static_cast<int>(args.num("threads", 2, 2));  // running at a time
  const long total = args.num("total", 20'000, 200, true);
  const long nslots = args.num("slots", 256, 32);
  const size_t min_size = static_cast<size_t>(args.num("min", 16, 16));
  const size_t max_size = static_cast<size_t>(args.num("max", 1024, 1024));
  if (threads < 1 || nslots < 1 || min_size < 16 || max_size < min_size || max_size >= (1u << 24)) return 64;

  auto* table = new std::atomic<void*>[static_cast<size_t>(nslots)];
  for (long i = 0; i < nslots; ++i) table[i].store(nullptr, std::memory_order_relaxed);
  std::atomic<long> bad{0};
  std::vector<std::thread> wave;
  wave.reserve(static_cast<size_t>(threads));

  const double t0 = kmb::now_s();
  for (long started = 0; started < total;) {
    for (int k = 0; k < threads && started < total; ++k, ++started) {
      wave.emplace_back([&, id = started] {
        kmb::Rng rng(0x7C4A6ull + static_cast<uint64_t>(id) * 104729);
        const size_t n = rng.log_range(min_size, max_size);
        void* p = std::malloc(n);
        if (!p) std::abort();
        kmb::stamp_self(p, n, rng.next());
        void* old = table[rng.below(static_cast<uint64_t>(nslots))].exchange(p, std::memory_order_acq_rel);
        if (old) {
          if (kmb::verify_self(old) == 0) bad.fetch_add(1, std::memory_order_relaxed);
          std::free(old);
        }
      });
    }
    for (auto& th : wave) th.join();
    wave.clear();
  }
  const double secs = kmb::now_s() - t0;
  bool ok = bad.load() == 0;
  for (long i = 0; i < nslots; ++i)
    if (void* p = table[i].load(std::memory_order_relaxed)) {
      ok &= kmb::verify_self(p) != 0;
      std::free(p);
    }
  delete[] table;
  // Each thread: one malloc and (once the table is full) one free.
  return kmb::report("thread-churn", threads, 2.0 * static_cast<double>(total), secs, ok);
}
