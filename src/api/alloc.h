// alloc.h — the allocation entry points with POSIX/glibc semantics, shared by the km_* C API and the
// malloc/new override. Each returns nullptr on failure; alloc() also sets errno = ENOMEM (in its slow
// path, so that malloc is a tail call). The caller applies the rest of its failure policy (C++ new:
// the new_handler, then std::bad_alloc), so one fast path serves both.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kmalloc.h"
#include "core/heap.h"
#include "core/huge.h"
#include "core/secure.h"
#include "core/span.h"
#include "platform/os.h"

namespace km {

constexpr size_t kMaxRequest = size_t(PTRDIFF_MAX);

// Sizes above 1 KiB: the other lanes and large blocks; nullptr with errno = ENOMEM on failure.
KM_NOINLINE void* alloc_big(size_t size);
// Above the largest lane: a span, or a huge block (zero: reads as zeros). nullptr on failure.
void* alloc_large(size_t size, bool zero);

// malloc: up to 1 KiB a table lookup and a lane pop; else, or when the lane's page is empty, a call.
KM_INLINE void* alloc(size_t size) {
  if (KM_LIKELY(size <= kDirectMax)) return small_alloc(size);
  return alloc_big(size);
}

// calloc: overflow-checked, zeroed (fresh cells and fresh mappings are not written again).
inline void* alloc_zero(size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total) || total > kMaxRequest) return nullptr;
  if (total > kLargestLane) return alloc_large(total, true);
  unsigned lane = lane_of(total);
  Page* page;
  if (Block* b = lane_pop(lane, &page)) {
    zero_popped(page, b);
    return b;
  }
  return heap_alloc_slow(total, lane, true);
}

// Aligned allocation; `align` must be a power of two (callers validate their own rules first).
// Up to a slot (64 KiB), a lane whose cell size is a multiple of `align` gives the alignment for
// free, and so does a span (slot-aligned); larger alignments take a huge block.
inline void* alloc_aligned(size_t align, size_t size) {
  if (align <= kMinAlign) return alloc(size);
  if (size > kMaxRequest || align > kMaxRequest) return nullptr;
  if (align <= kSlotSize) {
    if (size <= kLargestLane) {
      if (unsigned lane = lane_of_aligned(size ? size : 1, align)) return lane_alloc(size, lane);
    }
    if (span_fits(size)) return span_alloc(size, false);   // size > kLargestLane: a lane fits below
  }
  return huge_alloc(size ? size : 1, align, false);
}

KM_INLINE void release(void* p) { cell_free(p); }

// C23 free_sized / free_aligned_sized (align 0: none given). They free like free; in secure mode a
// size (or alignment) that does not match the block stops the program first, see check_sized.
KM_NOINLINE void check_sized(const void* p, size_t size, size_t align, const char* call);
KM_INLINE void release_sized(void* p, size_t size, size_t align, const char* call) {
  if (KM_UNLIKELY(secure_enabled()) && p) check_sized(p, size, align, call);
  cell_free(p);
}

// malloc_usable_size: constant for a block's whole life. `call` names the caller in messages.
size_t usable_size(const void* p, const char* call);
// realloc (p != nullptr, size > 0): in place when it fits; nullptr on failure with p intact.
void* resize(void* p, size_t size);
bool owns(const void* p);
int trim();
// km_stats_get without the walks that ask the OS (for mallinfo, which some programs poll): the
// counters and the exact bytes in use, with resident, process_resident and dirty left 0.
void stats_counts(km_stats* out);

}  // namespace km
