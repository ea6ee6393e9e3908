// lin.cpp — the per-thread linear stack: a mark is the top; allocating bumps it; releasing to a mark
// drops everything above it at once.
#include <pthread.h>

#include "kmem/cell.h"
#include "platform/os.h"

namespace {

using namespace km::kmem;

// A chunk of the stack, mapped from the OS. Invariants: data starts after the header (16-aligned);
// `saved` is the top the thread had reached in this chunk when it moved on to a newer chunk (only
// meaningful for chunks below the current one). Chunks of the standard size may be kept as the spare.
struct Chunk {
  Chunk* prev;    // the older chunk below, NULL for the bottom one
  char* end;      // one past the last data byte
  char* saved;    // top within this chunk when the next chunk was started
  size_t mapped;  // bytes of the mapping, header included
  char* data() { return reinterpret_cast<char*>(this + 1); }
};
static_assert(sizeof(Chunk) == 32);

constexpr size_t kChunk = 256 * 1024;  // standard chunk; bigger requests get a chunk of their own
constexpr size_t kKeep = 16;           // released standard chunks kept per thread (4 MiB): the
                                       // threshold past which released memory goes back to the OS

// One per thread, written only by that thread. All-zero is the valid empty state, so there is no
// dynamic initialiser; the first slow path maps a chunk and registers the thread-exit cleanup.
struct LinState {
  Chunk* cur;     // the chunk holding the top, NULL before first use
  char* top;      // next free byte in cur, 16-aligned
  Chunk* spare;   // released standard chunks kept for reuse, linked through prev; NULL if none
  size_t spares;  // how many (<= kKeep)
  bool cleanup;   // the thread-exit destructor is registered
};
constinit thread_local LinState tls __attribute__((tls_model("initial-exec"))) = {};

km::os::ThreadKey key;
pthread_once_t key_once = PTHREAD_ONCE_INIT;   // libc's one-time initialisation, not a kernel call

void unmap_chunk(Chunk* c) { km::os::unmap(c, c->mapped); }

// Thread exit: every chunk and the spare go back to the OS.
void on_thread_exit(void* arg) {
  LinState* s = static_cast<LinState*>(arg);
  Chunk* c = s->cur;
  while (c != nullptr) {
    Chunk* prev = c->prev;
    unmap_chunk(c);
    c = prev;
  }
  c = s->spare;
  while (c != nullptr) {
    Chunk* prev = c->prev;
    unmap_chunk(c);
    c = prev;
  }
  *s = LinState{};
}

void make_key() { km::os::thread_key_create(&key, on_thread_exit); }

// Hand a chunk back: keep up to kKeep standard chunks as spares, unmap the rest.
void release_chunk(LinState& s, Chunk* c) {
  if (c->mapped == kChunk && s.spares < kKeep) {
    c->prev = s.spare;
    s.spare = c;
    s.spares++;
  } else {
    unmap_chunk(c);
  }
}

// Start a new chunk able to hold `need` bytes on top of the current one. false + ENOMEM on failure.
__attribute__((noinline, cold)) bool grow(size_t need) {
  LinState& s = tls;
  if (!s.cleanup) {
    pthread_once(&key_once, make_key);
    km::os::thread_key_set(key, &s);
    s.cleanup = true;
  }
  size_t size = kChunk;
  if (need > kChunk - sizeof(Chunk)) {
    if (need > (SIZE_MAX >> 2)) {
      errno = ENOMEM;
      return false;
    }
    size = km::os::page_round(need + sizeof(Chunk));
  }
  Chunk* c;
  if (size == kChunk && s.spare != nullptr) {
    c = s.spare;
    s.spare = c->prev;
    s.spares--;
  } else {
    c = static_cast<Chunk*>(km::os::map(size));
    if (c == nullptr) {
      errno = ENOMEM;
      return false;
    }
    c->mapped = size;
  }
  c->end = reinterpret_cast<char*>(c) + size;
  c->saved = nullptr;
  c->prev = s.cur;
  if (s.cur) s.cur->saved = s.top;
  s.cur = c;
  s.top = c->data();
  return true;
}

inline void* bump(size_t n) {
  size_t n16;
  if (KM_UNLIKELY(n == 0)) {
    errno = EINVAL;
    return nullptr;
  }
  if (KM_UNLIKELY(!align16(n, &n16))) {
    errno = ENOMEM;
    return nullptr;
  }
  LinState& s = tls;
  if (KM_UNLIKELY(s.cur == nullptr || static_cast<size_t>(s.cur->end - s.top) < n16)) {
    if (!grow(n16)) return nullptr;
  }
  char* p = s.top;
  s.top = p + n16;
  return p;
}

}  // namespace

// The current top of this thread's stack, as a mark for kmlinx. Maps the first chunk if needed.
extern "C" KM_EXPORT void* kmlini(void) {
  LinState& s = tls;
  if (s.cur == nullptr && !grow(0)) return nullptr;
  return s.top;
}

extern "C" KM_EXPORT void* kmlina(size_t n) { return bump(n); }

extern "C" KM_EXPORT void* kmlinz(size_t n) {
  void* p = bump(n);
  if (p != nullptr) std::memset(p, 0, n);
  return p;
}

// Release everything allocated after `mark` (a value kmlini returned, or a pointer kmlina returned)
// and return the mark; NULL + EINVAL if it is not a top this thread's stack has had.
extern "C" KM_EXPORT void* kmlinx(void* mark) {
  LinState& s = tls;
  char* m = static_cast<char*>(mark);
  if (m == nullptr || (reinterpret_cast<uintptr_t>(m) & 15) != 0 || s.cur == nullptr) {
    errno = EINVAL;
    return nullptr;
  }
  Chunk* c = s.cur;
  char* top = s.top;
  while (c != nullptr && !(m >= c->data() && m <= top)) {
    c = c->prev;
    top = c ? c->saved : nullptr;
  }
  if (c == nullptr) {
    errno = EINVAL;
    return nullptr;
  }
  while (s.cur != c) {
    Chunk* dead = s.cur;
    s.cur = dead->prev;
    release_chunk(s, dead);
  }
  s.top = m;
  return mark;
}
