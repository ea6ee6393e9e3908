// fifo.cpp — the FIFO allocator of the seed (IOMalloc): one power-of-two ring of chunks, each a
// 2-byte length cookie and its bytes, freed strictly in allocation order.
#include <bit>

#include "kmem/cell.h"

namespace {

constexpr size_t kCookie = 2;
constexpr size_t kMaxChunk = 65534;  // the cookie holds the length; a chunk costs at most 65,536

}  // namespace

// A queue. Accounting is exact modulo `cap`: a chunk of n bytes costs n + 2, and the ring holds any
// run of chunks whose costs add up to at most cap. Every chunk is stored physically contiguous
// from its logical start: one that runs past the end of the ring continues into `slack` bytes after
// it, while the logical bytes it covers at the ring's start stay reserved to it, so kmfifoa can
// return a contiguous chunk without padding. Invariants: head < cap; used <= cap; a chunk starts
// at head and each next one right after the previous (mod cap); an empty queue has head == 0.
// Single owner: no locks.
struct kmfifo {
  kmcell id;           // kind fifo, size = cap
  size_t cap;          // ring bytes, a power of two
  size_t mask;         // cap - 1
  size_t head;         // offset of the oldest chunk's cookie
  size_t used;         // bytes of live chunks, cookies included
  size_t count;        // live chunks
  unsigned char* buf;  // cap + slack bytes, slack = min(cap, 65536)
};

namespace {
using namespace km::kmem;

constexpr size_t kFifoHead = (sizeof(kmfifo) + 15) & ~size_t{15};

inline bool valid(kmfifo* q) { return cell_is(reinterpret_cast<kmcell*>(q), kmkind_fifo); }

inline size_t cookie_at(const unsigned char* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Room for a chunk of n bytes at the tail: its cookie written, the data pointer returned, or 0 and
// the error (EINVAL, EMSGSIZE: can never fit, ENOBUFS: full now).
inline int reserve(kmfifo* q, size_t n, unsigned char** out) {
  if (!valid(q) || n == 0) return EINVAL;
  if (n > kMaxChunk || n + kCookie > q->cap) return EMSGSIZE;
  size_t cost = n + kCookie;
  if (q->used + cost > q->cap) return ENOBUFS;
  unsigned char* c = q->buf + ((q->head + q->used) & q->mask);
  uint16_t v = static_cast<uint16_t>(n);
  std::memcpy(c, &v, sizeof v);
  q->used += cost;
  q->count++;
  *out = c + kCookie;
  return 0;
}

inline void pop(kmfifo* q, size_t len) {
  q->used -= len + kCookie;
  q->count--;
  // An empty queue starts over at the ring's start: the next chunks stay cache-warm and unwrapped.
  q->head = q->used == 0 ? 0 : (q->head + len + kCookie) & q->mask;
}

}  // namespace

// A queue over a ring of `capacity` bytes (a power of two, else EINVAL; see kmfifop2). `flags` is
// reserved and must be 0 (EINVAL). NULL + errno on failure.
extern "C" KM_EXPORT kmfifo* kmfifoi(size_t capacity, unsigned flags) {
  if (capacity == 0 || (capacity & (capacity - 1)) != 0 || flags != 0) {
    errno = EINVAL;
    return nullptr;
  }
  if (capacity > (SIZE_MAX >> 2)) {
    errno = ENOMEM;
    return nullptr;
  }
  size_t slack = capacity < kMaxChunk + kCookie ? capacity : kMaxChunk + kCookie;
  char* mem = static_cast<char*>(km_malloc(kFifoHead + capacity + slack));
  if (mem == nullptr) return nullptr;
  kmfifo* q = reinterpret_cast<kmfifo*>(mem);
  cell_init(&q->id, kmkind_fifo, capacity);
  q->cap = capacity;
  q->mask = capacity - 1;
  q->head = q->used = q->count = 0;
  q->buf = reinterpret_cast<unsigned char*>(mem + kFifoHead);
  return q;
}

extern "C" KM_EXPORT void kmfifox(kmfifo* q) {
  if (!valid(q)) {
    errno = EINVAL;
    return;
  }
  q->id.magic = 0;
  km_free(q);
}

// Copy n bytes in as the newest chunk. 0, or EINVAL / EMSGSIZE (n > 65534 or n + 2 > capacity) /
// ENOBUFS (full).
extern "C" KM_EXPORT int kmfifopush(kmfifo* q, const void* data, size_t n) {
  if (data == nullptr) return EINVAL;
  unsigned char* p;
  int rc = reserve(q, n, &p);
  if (rc == 0) std::memcpy(p, data, n);
  return rc;
}

// Copy the oldest chunk into buf, store its length in *n and free it. 0, or EINVAL, ENOENT (empty),
// EMSGSIZE (bufsize < length: *n gets the length and the chunk stays).
extern "C" KM_EXPORT int kmfifoshift(kmfifo* q, void* buf, size_t* n, size_t bufsize) {
  if (!valid(q) || n == nullptr || (buf == nullptr && bufsize != 0)) return EINVAL;
  if (q->count == 0) return ENOENT;
  const unsigned char* c = q->buf + q->head;
  size_t len = cookie_at(c);
  *n = len;
  if (bufsize < len) return EMSGSIZE;
  std::memcpy(buf, c + kCookie, len);
  pop(q, len);
  return 0;
}

// Reserve a contiguous chunk of n bytes in place (no alignment: bytes follow a 2-byte cookie). NULL
// + errno as kmfifopush returns it.
extern "C" KM_EXPORT void* kmfifoa(kmfifo* q, size_t n) {
  unsigned char* p;
  int rc = reserve(q, n, &p);
  if (rc != 0) {
    errno = rc;
    return nullptr;
  }
  return p;
}

// Free the oldest chunk, which p must be (else EINVAL; ENOENT when the queue is empty).
extern "C" KM_EXPORT int kmfifof(kmfifo* q, void* p) {
  if (!valid(q) || p == nullptr) return EINVAL;
  if (q->count == 0) return ENOENT;
  const unsigned char* c = q->buf + q->head;
  if (p != c + kCookie) return EINVAL;
  pop(q, cookie_at(c));
  return 0;
}

// The smallest power of two >= n (1 for 0); 0 + ERANGE when that does not fit in size_t.
extern "C" KM_EXPORT size_t kmfifop2(size_t n) {
  if (n <= 1) return 1;
  if (n > (SIZE_MAX >> 1) + 1) {
    errno = ERANGE;
    return 0;
  }
  return std::bit_ceil(n);
}
