// pool.cpp — n fixed-size cells with O(1) alloc and free; a cell finds its pool from itself.
#include "kmem/cell.h"

namespace {

// The 16-byte header in front of every pool cell's data.
// Invariants: `pool` is set when the cell is carved and never changes. `link` is odd while the cell
// is live (bit 1 = shred on free) and is the next free cell (16-aligned, so even; NULL ends the
// list) while it is free. Only the pool's owner thread touches either.
struct PoolCell {
  kmpool* pool;
  uintptr_t link;
};
static_assert(sizeof(PoolCell) == 16);

constexpr uintptr_t kLive = 1;
constexpr uintptr_t kShred = 2;

}  // namespace

// A pool: one block of storage drawn from `src`, holding the pool itself and then n cells of
// `stride` bytes (header + cellsz rounded to 16). Cells are carved from the fresh tail lazily (so
// kmpooli is O(1) and untouched storage stays untouched) and recycled through a LIFO free list.
// Single owner: no locks; one thread at a time may use a pool.
struct kmpool {
  kmcell id;         // kind pool, size = the cell size asked for
  size_t stride;     // bytes per cell, header included; a multiple of 16
  uint64_t inverse;  // 1 + UINT64_MAX / stride: offset % stride == 0 without a division
  size_t n;          // cells in the pool
  size_t carved;     // cells taken from the fresh tail so far (<= n)
  size_t live;       // cells handed out and not freed
  PoolCell* free;    // most recently freed cell, NULL if none
  kmcell* src;       // where the storage came from (NULL = heap)
  size_t total;      // bytes of storage, for giving it back
  char* cells;       // the first cell's header
};

namespace km::kmem {

namespace {
constexpr size_t kPoolHead = (sizeof(kmpool) + kAlign - 1) & ~(kAlign - 1);

// Is off a multiple of the stride? Lemire's divisibility test for 32-bit offsets, % beyond.
inline bool at_cell_start(const kmpool* pool, size_t off) {
  if (KM_LIKELY(off <= UINT32_MAX && pool->stride <= UINT32_MAX)) return off * pool->inverse <= pool->inverse - 1;
  return off % pool->stride == 0;
}

inline PoolCell* header(void* p) { return reinterpret_cast<PoolCell*>(static_cast<char*>(p) - sizeof(PoolCell)); }

// The live cell p belongs to, or NULL; checks the pool, the range, the stride and the live bit.
inline PoolCell* live_cell(void* p) {
  if (p == nullptr || (reinterpret_cast<uintptr_t>(p) & (kAlign - 1)) != 0) return nullptr;
  // Ref cells and tree nodes end their header with a kmcell: refuse them before following `pool`
  // (a pool pointer is 16-aligned, so its low word is never kmkind_ref or kmkind_tree).
  const kmcell* id = reinterpret_cast<const kmcell*>(header(p));
  if (cell_is(id, kmkind_ref) || cell_is(id, kmkind_tree)) return nullptr;
  PoolCell* h = header(p);
  kmpool* pool = h->pool;
  if (!cell_is(reinterpret_cast<kmcell*>(pool), kmkind_pool)) return nullptr;
  char* c = reinterpret_cast<char*>(h);
  if (c < pool->cells || c >= pool->cells + pool->carved * pool->stride) return nullptr;
  if (!at_cell_start(pool, static_cast<size_t>(c - pool->cells))) return nullptr;
  if ((h->link & kLive) == 0) return nullptr;
  return h;
}

void* take(kmpool* pool) {
  PoolCell* h = pool->free;
  if (h != nullptr) {
    pool->free = reinterpret_cast<PoolCell*>(h->link);
  } else if (pool->carved < pool->n) {
    h = reinterpret_cast<PoolCell*>(pool->cells + pool->carved * pool->stride);
    h->pool = pool;
    pool->carved++;
  } else {
    errno = ENOMEM;
    return nullptr;
  }
  h->link = kLive;
  pool->live++;
  return h + 1;
}

void give(void* p, bool shred) {
  PoolCell* h = live_cell(p);
  if (h == nullptr) {
    errno = EINVAL;
    return;
  }
  kmpool* pool = h->pool;
  if (shred || (h->link & kShred) != 0 || cell_shred(&pool->id)) zero_explicit(p, pool->id.size);
  h->link = reinterpret_cast<uintptr_t>(pool->free);
  pool->free = h;
  pool->live--;
}
}  // namespace

kmpool* pool_of(void* p) {
  PoolCell* h = live_cell(p);
  return h ? h->pool : nullptr;
}
size_t pool_cell_size(const kmpool* pool) { return pool->id.size; }
void pool_taint(void* p) {
  if (PoolCell* h = live_cell(p)) h->link |= kShred;
}

}  // namespace km::kmem

using namespace km::kmem;

// Pool of n cells of cellsz bytes drawn from src. EINVAL: zero sizes or a bad src; ENOMEM: overflow
// or no memory.
extern "C" KM_EXPORT kmpool* kmpooli(kmcell* src, size_t cellsz, size_t n) {
  if (cellsz == 0 || n == 0 || !src_ok(src)) {
    errno = EINVAL;
    return nullptr;
  }
  size_t data, stride, cells, total;
  if (!align16(cellsz, &data) || !add_size(data, sizeof(PoolCell), &stride) ||
      __builtin_mul_overflow(stride, n, &cells) || !add_size(cells, kPoolHead, &total)) {
    errno = ENOMEM;
    return nullptr;
  }
  char* mem = static_cast<char*>(src_alloc(src, total));
  if (mem == nullptr) return nullptr;
  kmpool* pool = reinterpret_cast<kmpool*>(mem);
  cell_init(&pool->id, kmkind_pool, cellsz);
  pool->stride = stride;
  pool->inverse = UINT64_MAX / stride + 1;
  pool->n = n;
  pool->carved = 0;
  pool->live = 0;
  pool->free = nullptr;
  pool->src = src;
  pool->total = total;
  pool->cells = mem + kPoolHead;
  return pool;
}

// Release the pool and every cell in it (live cells become invalid).
extern "C" KM_EXPORT void kmpoolx(kmpool* pool) {
  if (!cell_is(reinterpret_cast<kmcell*>(pool), kmkind_pool)) {
    errno = EINVAL;
    return;
  }
  bool shred = cell_shred(&pool->id);
  pool->id.magic = 0;
  src_free(pool->src, pool, pool->total, shred);
}

extern "C" KM_EXPORT void* kmpoola(kmpool* pool) {
  if (KM_UNLIKELY(!cell_is(reinterpret_cast<kmcell*>(pool), kmkind_pool))) {
    errno = EINVAL;
    return nullptr;
  }
  return take(pool);
}

extern "C" KM_EXPORT void* kmpoolz(kmpool* pool) {
  void* p = kmpoola(pool);
  if (p != nullptr) std::memset(p, 0, pool->id.size);
  return p;
}

extern "C" KM_EXPORT kmptr kmpoolao(kmpool* pool) {
  void* p = kmpoola(pool);
  return kmptr{p ? kmkind_pool : kmkind_none, kmshred_no, p, p ? &pool->id : nullptr};
}

extern "C" KM_EXPORT kmptr kmpoolzo(kmpool* pool) {
  void* p = kmpoolz(pool);
  return kmptr{p ? kmkind_pool : kmkind_none, kmshred_no, p, p ? &pool->id : nullptr};
}

// Free a cell to the pool it came from (found from the cell). NULL is ignored; a pointer that is not
// a live pool cell gets EINVAL.
extern "C" KM_EXPORT void kmpoolf(void* cell) {
  if (cell != nullptr) give(cell, false);
}

extern "C" KM_EXPORT void kmpools(void* cell) {
  if (cell != nullptr) give(cell, true);
}
