// large-mt — large blocks in several threads, a quarter of them freed by another thread.
//
// Stresses: the large-block path under concurrency (issue 9). Each of T threads (default 2) keeps
// `slots` live blocks of 128 KiB–8 MiB (log-uniform) and at each step replaces a random slot's block
// with a new one, writing one word in every 4 KiB page, as a program filling a buffer would. The
// displaced block is freed by its thread or, one time in `handoff`, passed to the next thread (t → t+1
// mod T, through an SPSC ring) which checks it and frees it: a remote free of a large block. An
// allocator that maps and unmaps every block pays a page fault per page and contends on the kernel's
// mmap lock; one that caches must keep the cache cheap to share between threads and bounded in bytes
// (peak RSS is in the table). Every page's word is checked before the block is freed.
//
// Work is per thread (weak scaling).
#include "common.hpp"
#include "ring.hpp"

namespace {

constexpr size_t kPage = 4096;

// The block's head word (stamp_self) carries its size, so the receiving thread needs no side table;
// page words are derived from it.
void touch(uint64_t* p, size_t n, uint64_t rnd) {
  kmb::stamp_self(p, n, rnd);
  uint64_t head;
  std::memcpy(&head, p, 8);
  for (size_t off = kPage; off + 16 <= n; off += kPage) p[off / 8] = head ^ off;
}
bool check(const void* vp) {
  auto* p = static_cast<const uint64_t*>(vp);
  const size_t n = kmb::verify_self(p);
  if (n == 0) return false;
  bool ok = true;
  for (size_t off = kPage; off + 16 <= n; off += kPage) ok &= p[off / 8] == (p[0] ^ off);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  kmb::Args args(argc, argv, {"threads", "steps", "slots", "min", "max", "handoff"});
  const int threads = static_cast<int>(args.num("threads", 2, 2));
  const long steps = args.num("steps", 3'000, 60, true);  // per thread
  const long nslots = args.num("slots", 4, 2);             // per thread
  const size_t min_size = static_cast<size_t>(args.num("min", 128 << 10, 128 << 10));
  const size_t max_size = static_cast<size_t>(args.num("max", 8 << 20, 1 << 20));
  const long handoff = args.num("handoff", 4, 4);  // one displaced block in `handoff` goes to the next thread
  if (threads < 1 || nslots < 1 || handoff < 1 || min_size < 64 || max_size < min_size ||
      max_size >= (1u << 24))
    return 64;

  kmb::HandoffCircle circle(threads, 16);
  bool all;
  const double secs = kmb::run_timed(
      threads,
      [&](int t, kmb::StartLine& start) {
        kmb::Rng rng(0x1A46E347ull + static_cast<uint64_t>(t) * 7919);
        std::vector<void*> slots(static_cast<size_t>(nslots), nullptr);
        bool ok = true;
        auto recv = [&ok](void* p) {
          ok &= check(p);
          std::free(p);
        };
        start.arrive_and_wait();
        for (long i = 0; i < steps; ++i) {
          void*& s = slots[rng.below(static_cast<uint64_t>(nslots))];
          if (s) {
            if (rng.below(static_cast<uint64_t>(handoff)) == 0) {
              circle.send(t, s, recv);
            } else {
              ok &= check(s);
              std::free(s);
            }
          }
          // Sizes are multiples of 8 bytes, not of pages: real buffers are not page-rounded.
          const size_t n = rng.log_range(min_size, max_size) & ~size_t{7};
          s = std::malloc(n);
          if (!s) std::abort();
          touch(static_cast<uint64_t*>(s), n, rng.next());
          circle.drain(t, recv);
        }
        for (void* p : slots)
          if (p) recv(p);
        circle.finish(t, recv);
        return ok;
      },
      &all);
  // Each step is one malloc and one free (local or remote), after the first fill of the slots.
  return kmb::report("large-mt", threads, 2.0 * static_cast<double>(steps) * threads, secs, all);
}
