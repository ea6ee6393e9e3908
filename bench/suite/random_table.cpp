// random-table — random sizes at random positions: a table of slots, each step frees one and
// allocates 16 B–64 KiB there.
//
// Stresses: the small and especially the medium size classes (1 KiB–64 KiB) mixed in one heap (issue
// 12): each step frees the block in a random slot and allocates a new one of log-uniform size in
// [min, max] — as many blocks per doubling, so small sizes dominate by count while half the doublings
// are medium — into that slot. Medium pages are set up, carved, emptied and retired all the time. Each
// block gets a stamp at both ends and one word per 4 KiB page, all checked before it is freed.
// --threads T runs T independent tables (default 1).
//
// Work is per thread (weak scaling).
#include "common.hpp"

namespace {

constexpr size_t kPage = 4096;

struct Slot {
  uint64_t* p;
  size_t n;
  uint64_t tag;
};

void write(const Slot& s) {
  kmb::stamp(s.p, s.n, s.tag);
  for (size_t off = kPage; off + 16 <= s.n; off += kPage) s.p[off / 8] = s.tag ^ off;
}
bool check(const Slot& s) {
  bool ok = kmb::verify(s.p, s.n, s.tag);
  for (size_t off = kPage; off + 16 <= s.n; off += kPage) ok &= s.p[off / 8] == (s.tag ^ off);
  return ok;
}

bool run_thread(int id, long steps, long nslots, size_t min_size, size_t max_size, kmb::StartLine& start) {
  kmb::Rng rng(0x7AB1E5ull + static_cast<uint64_t>(id) * 104729);
  auto* slots = static_cast<Slot*>(std::calloc(static_cast<size_t>(nslots), sizeof(Slot)));
  bool ok = slots != nullptr;
  start.arrive_and_wait();
  for (long i = 0; i < steps && ok; ++i) {
    Slot& s = slots[rng.below(static_cast<uint64_t>(nslots))];
    if (s.p) {
      ok &= check(s);
      std::free(s.p);
    }
    s.n = rng.log_range(min_size, max_size) & ~size_t{7};
    s.tag = rng.next();
    s.p = static_cast<uint64_t*>(std::malloc(s.n));
    if (!s.p) return false;
    write(s);
  }
  for (long i = 0; i < nslots; ++i)
    if (slots[i].p) {
      ok &= check(slots[i]);
      std::free(slots[i].p);
    }
  std::free(slots);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  kmb::Args args(argc, argv, {"threads", "steps", "slots", "min", "max"});
  const int threads = static_cast<int>(args.num("threads", 1, 1));
  const long steps = args.num("steps", 4'000'000, 20'000, true);  // per thread
  const long nslots = args.num("slots", 2048, 256);                // per thread
  const size_t min_size = static_cast<size_t>(args.num("min", 16, 16));
  const size_t max_size = static_cast<size_t>(args.num("max", 64 << 10, 64 << 10));
  if (threads < 1 || nslots < 1 || min_size < 16 || max_size < min_size) return 64;

  bool all;
  const double secs = kmb::run_timed(
      threads,
      [&](int t, kmb::StartLine& start) { return run_thread(t, steps, nslots, min_size, max_size, start); },
      &all);
  return kmb::report("random-table", threads, 2.0 * static_cast<double>(steps) * threads, secs, all);
}
