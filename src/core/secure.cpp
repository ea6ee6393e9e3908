// secure.cpp — see secure.h.
#include "core/secure.h"

#include <atomic>
#include <cstring>

#include "core/diag.h"
#include "core/options.h"
#include "core/size_class.h"
#include "core/zero.h"
#include "platform/os.h"

namespace km {

bool g_secure = false;

namespace {
constexpr uint64_t kMix = 0x9E3779B97F4A7C15ull;

// ---- secrets. Secure mode has keys of its own, drawn from the kernel at start-up and independent of
// g_page_secret (the free tags' key, which a use-after-free read of any freed cell reveals, since a
// tag is that key ^ the page start ^ the cell address). Each key feeds a keyed pseudo-random function
// (SipHash-1-3) of one cell address, so what one cell shows (its encoded link, its tail word, its
// canary bytes) is that function's value at that one address: it decodes no other cell, and tells
// nothing of the keys or of g_page_secret.
struct Key {
  uint64_t k0, k1;
};
struct Keys {
  Key link;    // free-list links: next ^ prf(link, cell)
  Key tail;    // the tail word (requested size ^ prf(tail, cell)) and the cell's canary byte
  Key order;   // the random order of a fresh batch of cells
};
constinit Keys g_keys{};
std::atomic<uint64_t> g_batches{0};   // batches carved so far: a fresh order even for a reused page

KM_INLINE uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }
KM_INLINE void sip_round(uint64_t& v0, uint64_t& v1, uint64_t& v2, uint64_t& v3) {
  v0 += v1, v1 = rotl(v1, 13), v1 ^= v0, v0 = rotl(v0, 32);
  v2 += v3, v3 = rotl(v3, 16), v3 ^= v2;
  v0 += v3, v3 = rotl(v3, 21), v3 ^= v0;
  v2 += v1, v1 = rotl(v1, 17), v1 ^= v2, v2 = rotl(v2, 32);
}
// SipHash-1-3 of one 8-byte word.
uint64_t prf(const Key& k, uint64_t m) {
  uint64_t v0 = k.k0 ^ 0x736f6d6570736575ull, v1 = k.k1 ^ 0x646f72616e646f6dull;
  uint64_t v2 = k.k0 ^ 0x6c7967656e657261ull, v3 = k.k1 ^ 0x7465646279746573ull;
  v3 ^= m;
  sip_round(v0, v1, v2, v3);
  v0 ^= m;
  const uint64_t b = uint64_t(8) << 56;
  v3 ^= b;
  sip_round(v0, v1, v2, v3);
  v0 ^= b;
  v2 ^= 0xff;
  sip_round(v0, v1, v2, v3);
  sip_round(v0, v1, v2, v3);
  sip_round(v0, v1, v2, v3);
  return v0 ^ v1 ^ v2 ^ v3;
}
KM_INLINE uint64_t addr(const void* p) { return reinterpret_cast<uintptr_t>(p); }

uintptr_t encode(const Block* b, const Block* next) {
  return addr(next) ^ prf(g_keys.link, addr(b));
}
Block* decode(const Block* b) {
  return reinterpret_cast<Block*>(addr(b->next) ^ prf(g_keys.link, addr(b)));
}
uint64_t tail_mix(const void* p) { return prf(g_keys.tail, addr(p)); }
unsigned char pattern(uint64_t mix) { return static_cast<unsigned char>((mix >> 56) | 0x81); }
// The size word. Its first byte (the one a 1-byte overflow of an exact fit lands on) is a canary
// byte like the others, never 0; then the requested size in 24 bits and its complement in 24 bits,
// hidden under the cell's tail mix. Any change of the first byte to another value, or of one byte
// of the pair, is told from a real size. (Cells hold at most 128 KiB: 24 bits are plenty.)
constexpr uint64_t kSize24 = (uint64_t(1) << 24) - 1;
uint64_t size_word(size_t size, uint64_t mix) {
  uint64_t pair = (uint64_t(size) & kSize24) | ((~uint64_t(size) & kSize24) << 24);
  return uint64_t(pattern(mix)) | ((pair ^ (mix >> 8)) << 8);
}
bool size_from_word(uint64_t word, uint64_t mix, uint64_t* size) {
  uint64_t pair = (word >> 8) ^ (mix >> 8);
  *size = pair & kSize24;
  return (word & 0xff) == pattern(mix) && ((pair >> 24) & kSize24) == (~*size & kSize24) &&
         (pair >> 48) == 0;
}
uint64_t* tail_of(const Page* pg, void* p) {
  return reinterpret_cast<uint64_t*>(static_cast<char*>(p) + pg->cell_size - kSecureTail);
}
// The canary byte of a cell, from its tail mix (never 0, so writing a 0 always changes it).

// ---- guard pages. Each guard splits its mapping in two, and the kernel allows vm.max_map_count
// (65,530 by default) mappings per process: about 2 GiB of small-cell pages. Past that, mprotect
// fails with ENOMEM; the allocation that needed the guard fails with ENOMEM too (a block is never
// handed out unguarded), and the reason is printed once.
std::atomic<bool> g_guard_warned{false};
void guard_failed() {
  if (g_guard_warned.exchange(true, std::memory_order_relaxed)) return;
  Msg m;
  m.str("secure mode: too many guard pages (vm.max_map_count): allocations fail with "
        "ENOMEM\n").emit_stderr();
}
}  // namespace

void secure_init() {
  g_secure = option(Opt::secure) != 0;
  if (!g_secure) return;
  g_keys.link = {os::random_u64(), os::random_u64()};
  g_keys.tail = {os::random_u64(), os::random_u64()};
  g_keys.order = {os::random_u64(), os::random_u64()};
}

bool secure_guard(void* page) {
  if (os::protect_none(page, os::kPageSize)) return true;
  guard_failed();
  return false;
}

void secure_zero(void* p, size_t n) { zero_explicit(p, n); }

unsigned secure_lane(size_t size, unsigned lane) {
  size_t cell = lane_size(lane);
  size_t align = cell & (~cell + 1);
  if (align > kSlotSize) align = kSlotSize;   // lane pages start on a slot
  size_t need = size + kSecureTail;
  if (need > kLargestLane) return 0;
  for (unsigned l = lane_of(need); l < kLaneCount; ++l)
    if ((lane_size(l) & (align - 1)) == 0) return l;
  return 0;
}

size_t secure_page_bytes(size_t slot_bytes) { return slot_bytes - os::kPageSize; }
bool secure_page_setup(Page* pg, size_t slot_bytes) {
  return secure_guard(pg->start + slot_bytes - os::kPageSize);
}
void secure_page_teardown(Page* pg, size_t slot_bytes) {
  // Making the guard accessible again merges mappings (it never needs a new one): a failure here
  // means the page's memory is not what we think it is.
  if (!os::protect_rw(pg->start + slot_bytes - os::kPageSize, os::kPageSize)) {
    Msg m;   // from free, trim, a slow path or thread exit: no call to name
    m.str("secure mode: cannot remove the guard page (mprotect failed) of the page ");
    m.ptr(pg->start).str("\n").emit_stderr();
    os::abort_now();
  }
}

void secure_carve(Page* pg, char* first, uint32_t n) {
  // Push the batch in a random order (Fisher-Yates over indices).
  uint16_t order[1024];
  if (n > 1024) n = 1024;
  for (uint32_t i = 0; i < n; ++i) order[i] = uint16_t(i);
  // The order comes from a secret of its own and the batch (its first cell and a batch count), spread
  // by splitmix64: unpredictable without the key, different each time a page is carved, and no
  // system call per batch.
  uint64_t batch = g_batches.fetch_add(1, std::memory_order_relaxed);
  uint64_t r = prf(g_keys.order, addr(first) ^ (batch * kMix));
  for (uint32_t i = n; i > 1; --i) {
    r += kMix;
    uint64_t z = r;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    uint32_t j = uint32_t(z % i);
    uint16_t t = order[i - 1];
    order[i - 1] = order[j];
    order[j] = t;
  }
  for (uint32_t i = 0; i < n; ++i) {
    auto* b = reinterpret_cast<Block*>(first + size_t(order[i]) * pg->cell_size);
    b->next = reinterpret_cast<Block*>(encode(b, pg->local_free));
    b->tag = free_tag(pg, b);
    pg->local_free = b;
  }
}

bool secure_has_cell(Page* pg) {
  if (pg->local_free) return true;
  if (pg->carved >= pg->capacity) return false;
  uint32_t n = pg->capacity - pg->carved;
  uint32_t batch = uint32_t(16384 / pg->cell_size);
  if (batch < 1) batch = 1;
  if (batch > 1024) batch = 1024;
  if (n > batch) n = batch;
  secure_carve(pg, pg->start + size_t(pg->carved) * pg->cell_size, n);
  page_add_carved(pg, n);
  return true;
}

void* secure_pop(Page* pg, bool zero, size_t size) {
  Block* b = pg->local_free;
  // Every cell on the list is free (it carries the free tag) and links, once decoded, to nothing or
  // to another free cell of this page. A link to a block in use (a stale link written back into a
  // freed cell, say) would hand that block out twice; anything else is not a cell at all.
  if (b->tag != free_tag(pg, b))
    fatal_pointer("malloc", "corrupted free list (a block in use on it) at", b);
  Block* next = decode(b);
  if (next && !is_carved_cell(pg, next))
    fatal_pointer("malloc", "corrupted free list in the page of", b);
  if (next && (next == b || next->tag != free_tag(pg, next)))
    fatal_pointer("malloc", "corrupted free list (a link to a block in use) at", b);
  pg->local_free = next;
  b->tag = 0;
  b->next = nullptr;
  pg->used++;
  if (zero) std::memset(b, 0, size);
  size_t tail_at = pg->cell_size - kSecureTail;
  uint64_t mix = tail_mix(b);
  std::memset(reinterpret_cast<char*>(b) + size, pattern(mix), tail_at - size);
  *tail_of(pg, b) = size_word(size, mix);
  return b;
}

void secure_check_free(Page* pg, Block* b) {
  uint64_t mix = tail_mix(b);
  uint64_t size;
  size_t tail_at = pg->cell_size - kSecureTail;
  bool ok = size_from_word(*tail_of(pg, b), mix, &size) && size <= tail_at;
  const unsigned char* c = reinterpret_cast<const unsigned char*>(b);
  const unsigned char pat = pattern(mix);
  const uint64_t pat8 = uint64_t(pat) * 0x0101010101010101ull;
  size_t i = ok ? size_t(size) : tail_at;
  for (; ok && i < tail_at && (i & 7); ++i) ok = c[i] == pat;   // up to a word boundary,
  for (; ok && i + 8 <= tail_at; i += 8) {                       // then a word at a time
    uint64_t w;
    std::memcpy(&w, c + i, 8);
    ok = w == pat8;
  }
  for (; ok && i < tail_at; ++i) ok = c[i] == pat;
  if (!ok) fatal_pointer("free", "heap buffer overflow (canary overwritten) after block", b);
}

size_t secure_usable_size(const Page* pg, const void* p) {
  uint64_t size;
  // A broken pair or a size that does not fit is a damaged tail word (0 is a real size: malloc(0)).
  if (!size_from_word(*tail_of(pg, const_cast<void*>(p)), tail_mix(p), &size) ||
      size > pg->cell_size - kSecureTail)
    fatal_pointer("malloc_usable_size", "heap buffer overflow (size word overwritten) after block",
                  p);
  return size_t(size);
}

size_t secure_capacity(const Page* pg) { return pg->cell_size - kSecureTail; }

void secure_resize(Page* pg, void* p, size_t size) {
  size_t tail_at = secure_capacity(pg);
  uint64_t mix = tail_mix(p);
  std::memset(static_cast<char*>(p) + size, pattern(mix), tail_at - size);
  *tail_of(pg, p) = size_word(size, mix);
}

void secure_scrub(Page* pg, Block* b) { secure_zero(b, pg->cell_size); }

void secure_push(Page* pg, Block* b) {
  secure_zero(b, pg->cell_size);
  b->next = reinterpret_cast<Block*>(encode(b, pg->local_free));
  b->tag = free_tag(pg, b);
  pg->local_free = b;
}

}  // namespace km
