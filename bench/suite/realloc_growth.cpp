// realloc-growth — building strings and vectors by repeated realloc.
//
// Stresses: realloc's in-place growth (does the block have room, or does the allocator give it some?),
// the copy when it must move, and the size classes a growing block walks through. `strings` buffers
// grow side by side, round-robin, so a buffer's neighbour is usually live and in-place growth is not
// free. Half grow like a naive string builder (realloc to exactly the new length on every append of
// 1-64 bytes), half like a vector (capacity x1.5 when full). Each buffer is filled to a target length
// drawn log-uniformly from [min, max], its contents (a position-derived pattern) are checked, and it is
// freed and restarted. ops = realloc calls + mallocs + frees.
#include "common.hpp"

namespace {

struct Buf {
  unsigned char* p = nullptr;
  size_t len = 0, cap = 0, target = 0;
  uint64_t salt = 0;
  bool vector_like = false;
};

inline unsigned char pattern(size_t i, uint64_t salt) { return static_cast<unsigned char>(i * 131 + salt); }

}  // namespace

int main(int argc, char** argv) {
  kmb::Args args(argc, argv, {"strings", "bytes", "min", "max"});
  const long nstrings = args.num("strings", 16, 4);
  const double total = static_cast<double>(args.num("bytes", 400'000'000, 2'000'000, true));
  const size_t min_len = static_cast<size_t>(args.num("min", 256, 256));
  const size_t max_len = static_cast<size_t>(args.num("max", 1 << 20, 64 << 10));
  if (nstrings < 1 || min_len < 1 || max_len < min_len) return 64;

  kmb::Rng rng(0x5EA11Cull);
  std::vector<Buf> bufs(static_cast<size_t>(nstrings));
  bool ok = true;
  double ops = 0, appended = 0;
  auto restart = [&](Buf& b) {
    b.target = rng.log_range(min_len, max_len);
    b.salt = rng.next();
    b.vector_like = rng.below(2) == 0;
    b.len = 0;
    b.cap = b.vector_like ? 16 : 1;
    b.p = static_cast<unsigned char*>(std::malloc(b.cap));
    if (!b.p) std::abort();
    ops += 1;
  };
  auto finish = [&](Buf& b) {
    for (size_t i = 0; i < b.len; ++i) ok &= b.p[i] == pattern(i, b.salt);
    std::free(b.p);
    b.p = nullptr;
    ops += 1;
  };

  const double t0 = kmb::now_s();
  for (auto& b : bufs) restart(b);
  unsigned char chunk[64];
  while (appended < total) {
    for (auto& b : bufs) {
      const size_t add = rng.range(1, 64);
      if (b.len + add > b.cap) {
        size_t cap = b.len + add;
        if (b.vector_like) cap = std::max(cap, b.cap + b.cap / 2);
        b.p = static_cast<unsigned char*>(std::realloc(b.p, cap));
        if (!b.p) std::abort();
        b.cap = cap;
        ops += 1;
      }
      for (size_t i = 0; i < add; ++i) chunk[i] = pattern(b.len + i, b.salt);
      std::memcpy(b.p + b.len, chunk, add);
      b.len += add;
      appended += static_cast<double>(add);
      if (b.len >= b.target) {
        finish(b);
        restart(b);
      }
    }
  }
  for (auto& b : bufs) finish(b);
  const double secs = kmb::now_s() - t0;
  char extra[64];
  std::snprintf(extra, sizeof extra, "appended_mb=%.0f", appended / 1e6);
  return kmb::report("realloc", 1, ops, secs, ok, extra);
}
