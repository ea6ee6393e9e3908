// prodcons — producer/consumer: one thread allocates, another frees.
//
// Stresses: the cross-thread free path at full rate, with no local frees at all. The producer mallocs
// blocks of random size, stamps them and passes them through a bounded single-producer single-consumer
// ring; the consumer checks and frees them. Every free is remote, so an allocator that returns memory
// to the owning thread must do it cheaply and in bulk, and one that keeps it on the freeing thread must
// not let the producer's heap grow without bound. --pairs P runs P independent producer/consumer pairs
// (2P threads).
#include <thread>

#include "common.hpp"
#include "ring.hpp"

int main(int argc, char** argv) {
  kmb::Args args(argc, argv, {"pairs", "threads", "items", "ring", "min", "max"});
  // --threads T is accepted for the runner's uniformity and means T/2 pairs (at least one).
  const long t_arg = args.num("threads", 2, 2);
  const int pairs = static_cast<int>(args.num("pairs", t_arg >= 2 ? t_arg / 2 : 1, 1));
  const long items = args.num("items", 4'000'000, 20'000, true);  // per pair
  const long ring = args.num("ring", 1024, 64);
  const size_t min_size = static_cast<size_t>(args.num("min", 16, 16));
  const size_t max_size = static_cast<size_t>(args.num("max", 1024, 1024));
  if (pairs < 1 || ring < 2 || (ring & (ring - 1)) || min_size < 16 || max_size < min_size ||
      max_size >= (1u << 24))
    return 64;

  std::vector<kmb::Ring*> rings;
  for (int i = 0; i < pairs; ++i) rings.push_back(new kmb::Ring(static_cast<size_t>(ring)));
  // Threads 2i and 2i+1 are the producer and the consumer of pair i.
  bool all;
  const double secs = kmb::run_timed(
      2 * pairs,
      [&](int t, kmb::StartLine& start) {
        kmb::Ring* r = rings[static_cast<size_t>(t / 2)];
        if (t % 2 == 0) {  // producer
          kmb::Rng rng(0x9D0DC0ull + static_cast<uint64_t>(t / 2));
          start.arrive_and_wait();
          for (long k = 0; k < items; ++k) {
            const size_t n = rng.log_range(min_size, max_size);
            void* p = std::malloc(n);
            if (!p) std::abort();
            kmb::stamp_self(p, n, rng.next());
            r->push(p);
          }
          return true;
        }
        bool good = true;  // consumer: checks and frees what its producer made
        start.arrive_and_wait();
        for (long k = 0; k < items; ++k) {
          void* p = r->pop();
          good &= kmb::verify_self(p) != 0;
          std::free(p);
        }
        return good;
      },
      &all);
  for (kmb::Ring* r : rings) delete r;
  return kmb::report("prodcons", 2 * pairs, 2.0 * static_cast<double>(items) * pairs, secs, all);
}
