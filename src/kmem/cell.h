// cell.h — what every kmem source and managed cell starts with, and the one place that dispatches an
// allocation to its source (NULL = the heap, a kmpool, or a kmarena).
//
// Layering: kmem sits on the core's public km_* functions, on platform/os.h and on the core's
// config.h (KM_EXPORT, KM_LIKELY, ...) and zero.h; it never calls libc malloc, throws, or uses RTTI.
// Nothing here has a dynamic initialiser. Exported functions are defined `extern "C" KM_EXPORT`.
#pragma once

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <new>

#include "core/config.h"
#include "core/zero.h"
#include "kmalloc.h"

// The header of every source (kmpool, kmarena, kmfifo: the first field) and of every managed cell
// with a header of its own (ref, tree node: the last field, right before the data, so p - 16 tells
// the kind of any kmem cell). 16 bytes, so data that follows a 16-aligned header is 16-aligned.
//
// Invariants: `magic` is kCellMagic while the object is live and is cleared when it is released, so
// a stale or foreign pointer is refused (EINVAL) instead of being freed twice (best effort: the
// memory may have been reused). `shred` is read and written through std::atomic_ref because a ref
// cell's last owner may be on another thread than the one that tainted it. `size` is the whole cell
// (header plus data) for managed cells and the user size for sources where that means something.
struct kmcell {
  uint32_t kind;      // a kmkind; stored as an integer so a foreign header is never a bad enum load
  uint16_t magic;
  uint8_t shred;
  uint8_t reserved;
  size_t size;
};
static_assert(sizeof(kmcell) == 16);

namespace km::kmem {

constexpr uint16_t kCellMagic = 0x6b6d;  // "km"
constexpr size_t kAlign = 16;

// Round n up to a multiple of 16; false when that overflows (or n is absurd for any allocator).
inline bool align16(size_t n, size_t* out) {
  if (n > (SIZE_MAX >> 1)) return false;
  *out = (n + (kAlign - 1)) & ~(kAlign - 1);
  return true;
}

// a + b, false on overflow (the result is then unusable).
inline bool add_size(size_t a, size_t b, size_t* out) { return !__builtin_add_overflow(a, b, out); }

inline void cell_init(kmcell* c, kmkind kind, size_t size) {
  c->kind = static_cast<uint32_t>(kind);
  c->magic = kCellMagic;
  c->shred = kmshred_no;
  c->reserved = 0;
  c->size = size;
}

inline bool cell_is(const kmcell* c, kmkind kind) {
  return c != nullptr && c->kind == static_cast<uint32_t>(kind) && c->magic == kCellMagic;
}

// The header H (ending in `kmcell id`) right before a managed cell's data p, if p is a live cell of
// that kind (16-aligned, the header's kind and magic right); else NULL.
template <class H>
inline H* live_header(void* p, kmkind kind) {
  if (p == nullptr || (reinterpret_cast<uintptr_t>(p) & (kAlign - 1)) != 0) return nullptr;
  H* h = static_cast<H*>(p) - 1;
  return cell_is(&h->id, kind) ? h : nullptr;
}

inline bool cell_shred(kmcell* c) { return std::atomic_ref<uint8_t>(c->shred).load(std::memory_order_acquire) != 0; }
inline void cell_taint(kmcell* c) { std::atomic_ref<uint8_t>(c->shred).store(kmshred_yes, std::memory_order_release); }

using km::zero_explicit;   // shredding: the zeroing the compiler cannot remove

// ---- sources ---------------------------------------------------------------------------------------
// A source is NULL (the heap), a kmpool or a kmarena. src_ok refuses anything else (EINVAL).
bool src_ok(kmcell* src);
// n bytes, 16-aligned, from the source; NULL + errno (ENOMEM; EINVAL for a bad source or n larger
// than a pool's cells).
void* src_alloc(kmcell* src, size_t n);
// Give p (n bytes from src_alloc(src, ...)) back, zeroing its n bytes first when `shred`.
void src_free(kmcell* src, void* p, size_t n, bool shred);

// ---- internals shared between files ----------------------------------------------------------------
// Pool cells: the pool a cell belongs to and its data size, NULL if p is not a live pool cell.
kmpool* pool_of(void* p);
size_t pool_cell_size(const kmpool* pool);
void pool_taint(void* p);
// Ref and tree cells: data size (0 if p is not a live cell of that kind) and their source.
size_t ref_size(void* p, kmcell** src);
size_t tree_size(void* p, kmcell** src, void** parent);
void ref_taint(void* p);
void tree_taint(void* p);
// Arena large allocations: their usable size, 0 for a small one (small sizes are not recorded).
size_t arena_large_size(kmarena* a, void* p);

}  // namespace km::kmem
