// false-sharing — allocator-induced false sharing (Hoard's cache-thrash and cache-scratch).
//
// Stresses: whether the allocator puts small objects used by different threads on the same cache
// line. Each of N threads repeatedly mallocs a small object, writes every byte of it `writes` times and
// frees it.
//   --mode thrash   (active false sharing) the threads allocate their own objects; an allocator that
//                   serves concurrent threads from one shared pool hands out neighbouring cells, and
//                   the writes then bounce the line between cores.
//   --mode scratch  (passive false sharing) the main thread allocates one small object per thread —
//                   neighbours on one line — and hands each to a worker, which writes it, frees it,
//                   and then allocates its own. An allocator that recycles a freed cell into the
//                   freeing thread's heap keeps giving the workers cells on the shared line.
// With a per-thread heap both modes should scale linearly. The writes are volatile (the compiler
// cannot fold them) and each object is checked after its writes.
//
// Work is per thread (weak scaling).
#include <thread>

#include "common.hpp"

namespace {

// Write every byte `writes` times, then check the bytes hold what the writes left.
bool hammer(void* p, size_t n, long writes) {
  volatile unsigned char* b = static_cast<unsigned char*>(p);
  for (size_t i = 0; i < n; ++i) b[i] = 0;
  for (long w = 0; w < writes; ++w)
    for (size_t i = 0; i < n; ++i) b[i] = static_cast<unsigned char>(b[i] + 1);
  bool ok = true;
  for (size_t i = 0; i < n; ++i) ok &= b[i] == static_cast<unsigned char>(writes);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  kmb::Args args(argc, argv, {"mode", "threads", "objects", "size", "writes"});
  const std::string mode = args.str("mode", "thrash");
  const int threads = static_cast<int>(args.num("threads", 2, 2));
  const long objects = args.num("objects", 10'000'000, 5'000, true);  // per thread
  const size_t size = static_cast<size_t>(args.num("size", 8, 8));
  const long writes = args.num("writes", 10, 10);
  if (threads < 1 || size < 1 || (mode != "thrash" && mode != "scratch")) return 64;
  const bool scratch = mode == "scratch";

  // scratch: the main thread allocates every worker's first object, so they are neighbours.
  std::vector<void*> first(static_cast<size_t>(threads), nullptr);
  if (scratch)
    for (auto& p : first) p = std::malloc(size);

  bool all;
  const double secs = kmb::run_timed(
      threads,
      [&](int t, kmb::StartLine& start) {
        bool good = true;
        start.arrive_and_wait();
        if (void* p = first[static_cast<size_t>(t)]) {
          good &= hammer(p, size, writes);
          std::free(p);  // a remote free: the cell belongs to the main thread's heap
        }
        for (long i = 0; i < objects; ++i) {
          void* p = std::malloc(size);
          if (!p) std::abort();
          good &= hammer(p, size, writes);
          std::free(p);
        }
        return good;
      },
      &all);
  return kmb::report(scratch ? "cache-scratch" : "cache-thrash", threads,
                     2.0 * static_cast<double>(objects) * threads, secs, all);
}
