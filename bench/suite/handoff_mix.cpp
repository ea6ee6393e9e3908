// handoff-mix — random sizes in several threads, a share of the blocks freed by another thread.
//
// Stresses: the mix of local and remote frees of an rpmalloc-benchmark-style program (issue 12). Each
// of T threads (default 2) keeps `slots` live blocks of log-uniform size in [min, max]; each step
// replaces a random slot's block with a new one, and the displaced block is freed locally or, one time
// in `handoff`, handed to the next thread (t → t+1 mod T, through an SPSC ring) which checks and frees
// it. So every heap sees a steady trickle of foreign frees of all sizes among its own, and remote
// frees must be cheap without slowing the local path. The receiver polls its inbox every 32 steps.
// Blocks carry self-describing stamps, checked by whoever frees them.
//
// Work is per thread (weak scaling).
#include "common.hpp"
#include "ring.hpp"

int main(int argc, char** argv) {
  kmb::Args args(argc, argv, {"threads", "steps", "slots", "min", "max", "handoff"});
  const int threads = static_cast<int>(args.num("threads", 2, 2));
  const long steps = args.num("steps", 3'000'000, 20'000, true);  // per thread
  const long nslots = args.num("slots", 4096, 256);                // per thread
  const size_t min_size = static_cast<size_t>(args.num("min", 16, 16));
  const size_t max_size = static_cast<size_t>(args.num("max", 16 << 10, 16 << 10));
  const long handoff = args.num("handoff", 4, 4);
  if (threads < 1 || nslots < 1 || handoff < 1 || min_size < 16 || max_size < min_size ||
      max_size >= (1u << 24))
    return 64;

  kmb::HandoffCircle circle(threads, 1024);
  bool all;
  const double secs = kmb::run_timed(
      threads,
      [&](int t, kmb::StartLine& start) {
        kmb::Rng rng(0x4A4D0FFull + static_cast<uint64_t>(t) * 104729);
        std::vector<void*> slots(static_cast<size_t>(nslots), nullptr);
        bool ok = true;
        auto recv = [&ok](void* p) {
          ok &= kmb::verify_self(p) != 0;
          std::free(p);
        };
        start.arrive_and_wait();
        for (long i = 0; i < steps; ++i) {
          void*& s = slots[rng.below(static_cast<uint64_t>(nslots))];
          if (s) {
            if (rng.below(static_cast<uint64_t>(handoff)) == 0) {
              circle.send(t, s, recv);
            } else {
              ok &= kmb::verify_self(s) != 0;
              std::free(s);
            }
          }
          const size_t n = rng.log_range(min_size, max_size);
          s = std::malloc(n);
          if (!s) std::abort();
          kmb::stamp_self(s, n, rng.next());
          if ((i & 31) == 31) circle.drain(t, recv);
        }
        for (void* p : slots)
          if (p) recv(p);
        circle.finish(t, recv);
        return ok;
      },
      &all);
  return kmb::report("handoff-mix", threads, 2.0 * static_cast<double>(steps) * threads, secs, all);
}
