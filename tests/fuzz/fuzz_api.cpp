// Differential fuzzer of the km_* API (libFuzzer, built with clang by tests/fuzz/run.sh and
// scripts/fuzz). The input decodes into a sequence of calls -- malloc, calloc, realloc,
// reallocarray, free, posix_memalign, aligned_alloc, memalign, valloc, pvalloc, usable_size, and
// requests that must fail -- run against a shadow model that knows, for every live block, its
// requested size, its fill pattern, its alignment and its usable size. Any difference aborts:
// contents not kept, a block overlapping another (its pattern gets overwritten), a misaligned
// result, usable size below the request or changing during the block's life, calloc memory not
// zero, a wrong errno or return value for bad input, or a call that should fail succeeding.
#include <fuzzer/FuzzedDataProvider.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "kmalloc.h"

namespace {

constexpr int kSlots = 48;
constexpr size_t kPage = 4096;

struct Block {
  unsigned char* p;
  size_t size;     // requested
  size_t usable;   // km_usable_size at allocation; must never change
  size_t align;    // the alignment the call promised
  uint8_t seed;    // fill pattern
};
Block g_live[kSlots];

[[noreturn]] void fail(const char* what, size_t a = 0, size_t b = 0) {
  std::fprintf(stderr, "fuzz_api: MISMATCH: %s (%zu, %zu)\n", what, a, b);
  std::abort();
}
#define EXPECT(cond, ...) \
  do {                    \
    if (!(cond)) fail(#cond, ##__VA_ARGS__); \
  } while (0)

// The fill pattern of a block with seed s is g_pattern[s ..]: fills and checks are memcpy/memcmp
// (fast, and not coverage-instrumented byte loops).
constexpr size_t kMaxBlock = size_t(2) << 20;
unsigned char g_pattern[kMaxBlock + 256 + 4096];
unsigned char g_zero[kMaxBlock + 4096];
unsigned char pat(uint8_t seed, size_t i) { return g_pattern[seed + i]; }
__attribute__((constructor)) void init_pattern() {
  for (size_t i = 0; i < sizeof g_pattern; ++i)
    g_pattern[i] = static_cast<unsigned char>(i * 31 + (i >> 8) + (i >> 16));
}

void fill(Block& b) { std::memcpy(b.p, g_pattern + b.seed, b.size); }
void check_prefix(const unsigned char* p, uint8_t seed, size_t n, const char* what, size_t size) {
  if (std::memcmp(p, g_pattern + seed, n) == 0) return;
  size_t i = 0;
  while (p[i] == pat(seed, i)) ++i;
  fail(what, size, i);
}
void verify(const Block& b, size_t n) {
  check_prefix(b.p, b.seed, n, "contents changed", b.size);
  EXPECT(km_usable_size(b.p) == b.usable, b.usable, km_usable_size(b.p));
  EXPECT(km_owns(b.p) == 1);
}

// Record a fresh block: alignment, usable size >= request, (zeroed), then fill it.
void adopt(int slot, void* p, size_t size, size_t align, bool zeroed, uint8_t seed) {
  EXPECT(p != nullptr, size, align);
  EXPECT(reinterpret_cast<uintptr_t>(p) % align == 0, reinterpret_cast<uintptr_t>(p), align);
  Block& b = g_live[slot];
  b = Block{static_cast<unsigned char*>(p), size, km_usable_size(p), align, seed};
  EXPECT(b.usable >= size, b.usable, size);
  if (zeroed && std::memcmp(b.p, g_zero, b.usable) != 0) fail("calloc memory not zero", size, b.usable);
  fill(b);
}

void release(int slot) {
  Block& b = g_live[slot];
  if (!b.p) return;
  verify(b, b.size);
  km_free(b.p);
  b.p = nullptr;
}

size_t pick_size(FuzzedDataProvider& in) {
  switch (in.ConsumeIntegralInRange<int>(0, 9)) {
    case 0: return 0;
    case 1: return in.ConsumeIntegralInRange<size_t>(1, 16);
    case 2: case 3: case 4: return in.ConsumeIntegralInRange<size_t>(1, 1024);
    case 5: case 6: return in.ConsumeIntegralInRange<size_t>(1025, 64 << 10);
    case 7: return in.ConsumeIntegralInRange<size_t>((128 << 10) - 64, (128 << 10) + 64);   // the lane edge
    case 8: return in.ConsumeIntegralInRange<size_t>(64 << 10, 1 << 20);
    default: return in.ConsumeIntegralInRange<size_t>(1 << 20, kMaxBlock - 4096);
  }
}

size_t pick_align(FuzzedDataProvider& in) {   // mostly valid, sometimes not
  switch (in.ConsumeIntegralInRange<int>(0, 5)) {
    case 0: return in.ConsumeIntegralInRange<size_t>(0, 100);   // often not a power of two
    case 1: return size_t(1) << in.ConsumeIntegralInRange<int>(0, 63);
    default: return size_t(1) << in.ConsumeIntegralInRange<int>(3, 22);
  }
}

bool pow2(size_t x) { return x && !(x & (x - 1)); }

size_t huge(FuzzedDataProvider& in) {
  static const size_t k[] = {SIZE_MAX, SIZE_MAX - 15, size_t(PTRDIFF_MAX) + 1, size_t(1) << 50,
                             size_t(0) - kPage, size_t(0) - kPage + 1, size_t(1) << 62};
  return k[in.ConsumeIntegralInRange<size_t>(0, sizeof k / sizeof k[0] - 1)];
}

void step(FuzzedDataProvider& in) {
  int op = in.ConsumeIntegralInRange<int>(0, 13);
  int slot = in.ConsumeIntegralInRange<int>(0, kSlots - 1);
  uint8_t seed = in.ConsumeIntegral<uint8_t>();
  Block& b = g_live[slot];
  switch (op) {
    case 0: {
      release(slot);
      size_t n = pick_size(in);
      adopt(slot, km_malloc(n), n, 16, false, seed);
      break;
    }
    case 1: {
      release(slot);
      size_t n = pick_size(in);
      size_t c = in.ConsumeIntegralInRange<size_t>(0, 8);
      size_t each = c ? n / c : n;
      adopt(slot, km_calloc(c, each), c * each, 16, true, seed);
      break;
    }
    case 2: {   // realloc: keeps the prefix, NULL frees nothing when size 0 (frees, returns NULL)
      size_t n = pick_size(in);
      if (!b.p) {
        adopt(slot, km_realloc(nullptr, n), n, 16, false, seed);
        break;
      }
      verify(b, b.size);
      if (n == 0) {
        EXPECT(km_realloc(b.p, 0) == nullptr);
        b.p = nullptr;
        break;
      }
      void* q = km_realloc(b.p, n);
      EXPECT(q != nullptr, n);
      Block old = b;
      old.p = static_cast<unsigned char*>(q);
      check_prefix(old.p, old.seed, n < old.size ? n : old.size, "realloc lost contents", old.size);
      adopt(slot, q, n, 16, false, seed);
      break;
    }
    case 3: {   // reallocarray, with overflow
      if (!b.p) break;
      size_t c = in.ConsumeIntegralInRange<size_t>(1, 64);
      if (in.ConsumeBool()) {
        errno = 0;
        EXPECT(km_reallocarray(b.p, SIZE_MAX / (c + 1) + 1, c + 1) == nullptr);   // overflows
        EXPECT(errno == ENOMEM);
        verify(b, b.size);
        break;
      }
      size_t each = in.ConsumeIntegralInRange<size_t>(1, 4096);
      void* q = km_reallocarray(b.p, c, each);
      EXPECT(q != nullptr);
      Block old = b;
      old.p = static_cast<unsigned char*>(q);
      check_prefix(old.p, old.seed, c * each < old.size ? c * each : old.size,
                   "reallocarray lost contents", old.size);
      adopt(slot, q, c * each, 16, false, seed);
      break;
    }
    case 4:
      release(slot);
      km_free(nullptr);
      break;
    case 5: {   // posix_memalign: EINVAL for bad alignments, *out untouched
      size_t a = pick_align(in), n = pick_size(in);
      void* out = &out;
      int rc = km_posix_memalign(&out, a, n);
      if (a < sizeof(void*) || !pow2(a)) {
        EXPECT(rc == EINVAL, a);
        EXPECT(out == &out);
      } else if (a > (size_t(1) << 24)) {   // may or may not get that much address space
        EXPECT(rc == ENOMEM || rc == 0, a);
        if (rc == 0) km_free(out);
        else EXPECT(out == &out);
      } else {
        EXPECT(rc == 0, a, n);
        release(slot);
        adopt(slot, out, n, a, false, seed);
      }
      break;
    }
    case 6: {   // aligned_alloc: EINVAL unless a power of two
      size_t a = pick_align(in), n = pick_size(in);
      errno = 0;
      void* p = km_aligned_alloc(a, n);
      if (!pow2(a)) {
        EXPECT(p == nullptr && errno == EINVAL, a);
      } else if (a > (size_t(1) << 24)) {
        if (p) km_free(p);
        else EXPECT(errno == ENOMEM, a);
      } else {
        release(slot);
        adopt(slot, p, n, a < 16 ? 16 : a, false, seed);
      }
      break;
    }
    case 7: {   // memalign: odd alignments round up; above SIZE_MAX/2+1 is EINVAL
      size_t a = pick_align(in), n = pick_size(in);
      errno = 0;
      void* p = km_memalign(a, n);
      if (a > SIZE_MAX / 2 + 1) {
        EXPECT(p == nullptr && errno == EINVAL, a);
      } else if (a > (size_t(1) << 24)) {
        if (p) km_free(p);
        else EXPECT(errno == ENOMEM, a, size_t(errno));   // glibc: EINVAL only above SIZE_MAX/2+1
      } else {
        size_t want = 16;
        while (want < a) want <<= 1;
        release(slot);
        adopt(slot, p, n, want, false, seed);
      }
      break;
    }
    case 8: {
      release(slot);
      size_t n = pick_size(in);
      adopt(slot, km_valloc(n), n, kPage, false, seed);
      break;
    }
    case 9: {   // pvalloc rounds up to whole pages
      release(slot);
      size_t n = pick_size(in);
      void* p = km_pvalloc(n);
      size_t rounded = n ? (n + kPage - 1) & ~(kPage - 1) : kPage;
      adopt(slot, p, rounded, kPage, false, seed);
      break;
    }
    case 10:   // usable size and ownership of every live block
      for (auto& x : g_live)
        if (x.p) verify(x, in.ConsumeBool() ? x.size : (x.size < 64 ? x.size : 64));
      EXPECT(km_usable_size(nullptr) == 0);
      break;
    case 11: {   // requests that must fail: NULL + ENOMEM (posix_memalign: ENOMEM, *out untouched)
      size_t n = huge(in);
      int which = in.ConsumeIntegralInRange<int>(0, 8);
      errno = 0;
      void* p = nullptr;
      void* out = &out;
      switch (which) {
        case 0: p = km_malloc(n); break;
        case 1: p = km_calloc(1, n); break;
        case 2: p = km_calloc(n, in.ConsumeIntegralInRange<size_t>(2, 1000)); break;
        case 3: p = km_aligned_alloc(size_t(1) << in.ConsumeIntegralInRange<int>(0, 20), n); break;
        case 4: p = km_memalign(size_t(1) << in.ConsumeIntegralInRange<int>(0, 20), n); break;
        case 5: p = km_valloc(n); break;
        case 6: p = km_pvalloc(n); break;
        case 7:
          EXPECT(km_posix_memalign(&out, size_t(1) << in.ConsumeIntegralInRange<int>(3, 20), n) == ENOMEM, n);
          EXPECT(out == &out);
          errno = ENOMEM;
          break;
        default:
          if (b.p) {
            p = km_realloc(b.p, n);
            EXPECT(p == nullptr, n);
            verify(b, b.size);   // a failed realloc leaves the block as it was
          } else {
            p = km_realloc(nullptr, n);
          }
          break;
      }
      EXPECT(p == nullptr, n, size_t(which));
      EXPECT(errno == ENOMEM, size_t(errno), size_t(which));
      break;
    }
    case 12: {   // shrink then grow in place where it fits: contents always kept
      if (!b.p || b.size == 0) break;
      size_t n = in.ConsumeIntegralInRange<size_t>(1, b.size);
      void* q = km_realloc(b.p, n);
      EXPECT(q != nullptr);
      Block old = b;
      old.p = static_cast<unsigned char*>(q);
      check_prefix(old.p, old.seed, n, "shrinking realloc lost contents", n);
      adopt(slot, q, n, 16, false, seed);
      break;
    }
    default: {   // zero-size requests: unique, non-NULL
      release(slot);
      adopt(slot, km_malloc(0), 0, 16, false, seed);
      for (auto& x : g_live)
        if (&x != &b && x.p) EXPECT(x.p != b.p);
      break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  for (int i = 0; i < 400 && in.remaining_bytes() > 0; ++i) step(in);
  for (int s = 0; s < kSlots; ++s) release(s);
  return 0;
}
