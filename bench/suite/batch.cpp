// batch — allocate a batch of N same-size blocks, write them, free them in FIFO or LIFO order.
//
// Stresses: free-list pop and push in bulk in one thread (issue 12), without the mixing of sizes that
// hides the cost of carving fresh pages and retiring empty ones: a batch of `batch` blocks of one size
// is allocated and stamped, then checked and freed — in allocation order (--order fifo: the first
// page is emptied first, so an allocator that retires empty pages eagerly does it batch after batch)
// or in reverse (--order lifo: a stack, the easy case for a free list). Each round does this once for
// every size in {16, 64, 256, 1024, 4096} bytes.
#include "common.hpp"

int main(int argc, char** argv) {
  kmb::Args args(argc, argv, {"order", "rounds", "batch"});
  const std::string order = args.str("order", "fifo");
  const long rounds = args.num("rounds", 40, 3, true);
  const long batch = args.num("batch", 10'000, 1'000);
  if (batch < 1 || (order != "fifo" && order != "lifo")) return 64;
  const bool fifo = order == "fifo";
  static constexpr size_t kSizes[] = {16, 64, 256, 1024, 4096};

  std::vector<void*> ps(static_cast<size_t>(batch));
  kmb::Rng rng(0xBA7C4ull);
  bool ok = true;
  double ops = 0;
  const double t0 = kmb::now_s();
  for (long r = 0; r < rounds; ++r) {
    for (const size_t n : kSizes) {
      const uint64_t base = rng.next();
      for (long i = 0; i < batch; ++i) {
        void* p = std::malloc(n);
        if (!p) std::abort();
        kmb::stamp(p, n, base + static_cast<uint64_t>(i));
        ps[static_cast<size_t>(i)] = p;
      }
      for (long k = 0; k < batch; ++k) {
        const long i = fifo ? k : batch - 1 - k;
        void* p = ps[static_cast<size_t>(i)];
        ok &= kmb::verify(p, n, base + static_cast<uint64_t>(i));
        std::free(p);
      }
      ops += 2.0 * static_cast<double>(batch);
    }
  }
  const double secs = kmb::now_s() - t0;
  return kmb::report(fifo ? "batch-fifo" : "batch-lifo", 1, ops, secs, ok);
}
