// big-replace — replace random slots with big zero-initialised arrays (new char[n]()).
//
// Stresses: very large blocks (5–25 MiB) that come and go in one thread (issue 9, a third-party
// program's shape): `slots` arrays are live; each step deletes a random slot's array and puts a new
// `new char[n]()` of uniform random size there. The zeroing writes every byte, so an allocator that
// returns the memory to the kernel and maps it again pays a page fault per page, and one that keeps
// too much holds resident memory (peak RSS is in the table); reusing freed address space and splitting
// or growing into it is what wins. The program checks a few bytes of each new array are zero, writes
// eight bytes spread over it, and checks them before the array is deleted. The default is 500 steps, to
// keep scripts/bench short; the third-party program does 2000 (--steps 2000).
#include "common.hpp"

namespace {

constexpr int kMarks = 8;

struct Slot {
  char* p = nullptr;
  size_t n = 0;
  uint64_t tag = 0;
};

size_t mark_at(const Slot& s, int j) { return static_cast<size_t>(j) * (s.n - 1) / (kMarks - 1); }

void mark(Slot& s) {
  for (int j = 0; j < kMarks; ++j) s.p[mark_at(s, j)] = static_cast<char>((s.tag >> (8 * j)) | 1);
}
bool check_marks(const Slot& s) {
  bool ok = true;
  for (int j = 0; j < kMarks; ++j) ok &= s.p[mark_at(s, j)] == static_cast<char>((s.tag >> (8 * j)) | 1);
  return ok;
}
// The first, last and middle bytes and a few chosen by the RNG must be zero in a new array.
bool check_zero(const Slot& s, kmb::Rng& rng) {
  bool ok = s.p[0] == 0 && s.p[s.n - 1] == 0 && s.p[s.n / 2] == 0;
  for (int k = 0; k < 5; ++k) ok &= s.p[rng.below(s.n)] == 0;
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  kmb::Args args(argc, argv, {"slots", "steps", "min", "max"});
  const long nslots = args.num("slots", 20, 4);
  const long steps = args.num("steps", 500, 40, true);
  const size_t min_size = static_cast<size_t>(args.num("min", 5 << 20, 64 << 10));
  const size_t max_size = static_cast<size_t>(args.num("max", 25 << 20, 1 << 20));
  if (nslots < 1 || min_size < 16 || max_size < min_size) return 64;

  kmb::Rng rng(0xB16F11Eull);
  std::vector<Slot> slots(static_cast<size_t>(nslots));
  bool ok = true;
  double ops = 0, zeroed = 0;
  const double t0 = kmb::now_s();
  for (long i = 0; i < steps; ++i) {
    Slot& s = slots[rng.below(static_cast<uint64_t>(nslots))];
    if (s.p) {
      ok &= check_marks(s);
      delete[] s.p;
      ops += 1;
    }
    s.n = rng.range(min_size, max_size);
    s.tag = rng.next();
    s.p = new char[s.n]();
    ops += 1;
    zeroed += static_cast<double>(s.n);
    ok &= check_zero(s, rng);
    mark(s);
  }
  for (auto& s : slots)
    if (s.p) {
      ok &= check_marks(s);
      delete[] s.p;
      ops += 1;
    }
  const double secs = kmb::now_s() - t0;
  char extra[64];
  std::snprintf(extra, sizeof extra, "zeroed_gb=%.2f", zeroed / 1e9);
  return kmb::report("big-replace", 1, ops, secs, ok, extra);
}
