// secure.cpp — see secure.h.
#include "core/secure.h"

#include <cstring>

#include "core/diag.h"
#include "core/options.h"
#include "core/size_class.h"
#include "platform/os.h"

namespace km {

bool g_secure = false;

namespace {
constexpr uint64_t kMix = 0x9E3779B97F4A7C15ull;

uintptr_t encode(const Page* pg, const Block* b, const Block* next) {
  uintptr_t self = reinterpret_cast<uintptr_t>(b);
  return reinterpret_cast<uintptr_t>(next) ^ page_key(pg) ^ ((self << 17) | (self >> 47));
}
Block* decode(const Page* pg, const Block* b) {
  uintptr_t self = reinterpret_cast<uintptr_t>(b);
  return reinterpret_cast<Block*>(reinterpret_cast<uintptr_t>(b->next) ^ page_key(pg) ^
                                  ((self << 17) | (self >> 47)));
}
uint64_t tail_mix(const Page* pg, const void* p) { return (page_key(pg) * kMix) ^ reinterpret_cast<uintptr_t>(p); }
uint64_t* tail_of(const Page* pg, void* p) {
  return reinterpret_cast<uint64_t*>(static_cast<char*>(p) + pg->cell_size - kSecureTail);
}
unsigned char pattern(const Page* pg) { return static_cast<unsigned char>((page_key(pg) >> 8) | 0x81); }
}  // namespace

void secure_init() { g_secure = option(Opt::secure) != 0; }

void secure_zero(void* p, size_t n) {
  std::memset(p, 0, n);
  __asm__ __volatile__("" : : "r"(p) : "memory");   // the stores must happen
}

unsigned secure_lane(size_t size, unsigned lane) {
  size_t cell = lane_size(lane);
  size_t align = cell & (~cell + 1);
  if (align > os::kPageSize) align = os::kPageSize;
  size_t need = size + kSecureTail;
  if (need > kLargestLane) return 0;
  for (unsigned l = lane_of(need); l < kLaneCount; ++l)
    if ((lane_size(l) & (align - 1)) == 0) return l;
  return 0;
}

size_t secure_page_bytes(size_t slot_bytes) { return slot_bytes - os::kPageSize; }
void secure_page_setup(Page* pg, size_t slot_bytes) {
  os::protect_none(pg->start + slot_bytes - os::kPageSize, os::kPageSize);
}
void secure_page_teardown(Page* pg, size_t slot_bytes) {
  os::protect_rw(pg->start + slot_bytes - os::kPageSize, os::kPageSize);
}

void secure_carve(Page* pg, char* first, uint32_t n) {
  // Push the batch in a random order (Fisher-Yates over indices).
  uint16_t order[1024];
  if (n > 1024) n = 1024;
  for (uint32_t i = 0; i < n; ++i) order[i] = uint16_t(i);
  // The order comes from the page's secret key and the batch position (splitmix64): unpredictable
  // without the process secret, and no system call per batch.
  uint64_t r = page_key(pg) ^ (uint64_t(pg->carved) * kMix);
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
    b->next = reinterpret_cast<Block*>(encode(pg, b, pg->local_free));
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
  Block* next = decode(pg, b);
  if (next && !is_carved_cell(pg, next)) fatal_pointer("malloc", "corrupted free list in the page of", b);
  pg->local_free = next;
  b->tag = 0;
  b->next = nullptr;
  pg->used++;
  if (zero) std::memset(b, 0, size);
  size_t tail_at = pg->cell_size - kSecureTail;
  std::memset(reinterpret_cast<char*>(b) + size, pattern(pg), tail_at - size);
  *tail_of(pg, b) = uint64_t(size) ^ tail_mix(pg, b);
  return b;
}

void secure_check_free(Page* pg, Block* b) {
  uint64_t size = *tail_of(pg, b) ^ tail_mix(pg, b);
  size_t tail_at = pg->cell_size - kSecureTail;
  bool ok = size <= tail_at;
  const unsigned char* c = reinterpret_cast<const unsigned char*>(b);
  const unsigned char pat = pattern(pg);
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
  uint64_t size = *tail_of(pg, const_cast<void*>(p)) ^ tail_mix(pg, p);
  // A size that does not fit is a damaged tail word (0 is a real size: malloc(0)).
  if (size > pg->cell_size - kSecureTail)
    fatal_pointer("malloc_usable_size", "heap buffer overflow (size word overwritten) after block", p);
  return size_t(size);
}

size_t secure_capacity(const Page* pg) { return pg->cell_size - kSecureTail; }

void secure_resize(Page* pg, void* p, size_t size) {
  size_t tail_at = secure_capacity(pg);
  std::memset(static_cast<char*>(p) + size, pattern(pg), tail_at - size);
  *tail_of(pg, p) = uint64_t(size) ^ tail_mix(pg, p);
}

void secure_scrub(Page* pg, Block* b) { secure_zero(b, pg->cell_size); }

void secure_push(Page* pg, Block* b) {
  secure_zero(b, pg->cell_size);
  b->next = reinterpret_cast<Block*>(encode(pg, b, pg->local_free));
  b->tag = free_tag(pg, b);
  pg->local_free = b;
}

}  // namespace km
