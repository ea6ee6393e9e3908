// large-blocks — large blocks of 64 KiB to 32 MiB coming and going.
//
// Stresses: the large-block path (mmap/munmap, caching of freed spans, purge policy) and how much the
// allocator costs in page faults and resident memory. `slots` blocks are live at any time; each step
// frees a random slot's block and mallocs a new one of log-uniform size in [min, max], then touches
// one word per 4 KiB page, as a program that allocates a buffer and fills it would. An allocator that
// unmaps (or purges) and re-maps every time pays a page fault per page; one that caches too much
// holds resident memory. Each page's word is checked before the block is freed.
#include "common.hpp"

namespace {

constexpr size_t kPage = 4096;

struct Block {
  uint64_t* p = nullptr;
  size_t n = 0;
  uint64_t tag = 0;
};

void touch(Block& b) {
  for (size_t off = 0; off + 8 <= b.n; off += kPage) b.p[off / 8] = b.tag ^ off;
  kmb::stamp(b.p, b.n, b.tag);  // and the very end
}
bool check(const Block& b) {
  bool ok = kmb::verify(b.p, b.n, b.tag);
  for (size_t off = kPage; off + 8 <= b.n - 8; off += kPage) ok &= b.p[off / 8] == (b.tag ^ off);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  kmb::Args args(argc, argv, {"slots", "steps", "min", "max"});
  const long nslots = args.num("slots", 4, 2);
  const long steps = args.num("steps", 1'200, 100, true);
  const size_t min_size = static_cast<size_t>(args.num("min", 64 << 10, 64 << 10));
  const size_t max_size = static_cast<size_t>(args.num("max", 32 << 20, 4 << 20));
  if (nslots < 1 || min_size < 64 || max_size < min_size) return 64;

  kmb::Rng rng(0x1A46Eull);
  std::vector<Block> slots(static_cast<size_t>(nslots));
  bool ok = true;
  double ops = 0, touched = 0;
  const double t0 = kmb::now_s();
  for (long i = 0; i < steps; ++i) {
    Block& b = slots[rng.below(static_cast<uint64_t>(nslots))];
    if (b.p) {
      ok &= check(b);
      std::free(b.p);
      ops += 1;
    }
    // Sizes are multiples of 8 bytes, not of pages: real buffers are not page-rounded.
    b.n = rng.log_range(min_size, max_size) & ~size_t{7};
    b.tag = rng.next();
    b.p = static_cast<uint64_t*>(std::malloc(b.n));
    if (!b.p) std::abort();
    ops += 1;
    touch(b);
    touched += static_cast<double>(b.n);
  }
  for (auto& b : slots)
    if (b.p) {
      ok &= check(b);
      std::free(b.p);
      ops += 1;
    }
  const double secs = kmb::now_s() - t0;
  char extra[64];
  std::snprintf(extra, sizeof extra, "touched_gb=%.2f", touched / 1e9);
  return kmb::report("large", 1, ops, secs, ok, extra);
}
