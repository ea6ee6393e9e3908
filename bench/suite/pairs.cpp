// pairs — N malloc+free pairs of one size, for counting instructions under callgrind.
//
// Stresses: nothing by itself; it is the probe behind the runner's "instructions per malloc+free pair".
// The runner counts the instructions of runs with N and 2N pairs and subtracts, so start-up and the
// allocator's one-time initialisation cancel; `--size 0` runs the same loop without calling the
// allocator, so the loop's own instructions can be subtracted too. One pair per iteration, same size
// every time: the hottest fast path. The block is written and read, so the pair cannot be elided.
#include "common.hpp"

int main(int argc, char** argv) {
  kmb::Args args(argc, argv, {"pairs", "size"});
  const long n = args.num("pairs", 1'000'000, 1000);
  const size_t size = static_cast<size_t>(args.num("size", 64, 64));
  bool ok = true;
  long done = 0;
  const double t0 = kmb::now_s();
  if (size == 0) {
    for (long i = 0; i < n; ++i) {
      unsigned char buf[8];
      unsigned char* p = buf;
      kmb::escape(p);
      p[0] = static_cast<unsigned char>(i);
      kmb::escape(p);
      ok &= p[0] == static_cast<unsigned char>(i);
      ++done;
    }
  } else {
    for (long i = 0; i < n; ++i) {
      auto* p = static_cast<unsigned char*>(std::malloc(size));
      kmb::escape(p);
      p[0] = static_cast<unsigned char>(i);
      kmb::escape(p);
      ok &= p[0] == static_cast<unsigned char>(i);
      std::free(p);
      ++done;
    }
  }
  return kmb::report("pairs", 1, 2.0 * static_cast<double>(done), kmb::now_s() - t0, ok);
}
