// api.cpp — the km_* C API (kmalloc.h) and the non-inline parts of alloc.h.
#include <cerrno>

#include "api/alloc.h"
#include "core/diag.h"
#include "core/purge.h"
#include "core/runtime.h"
#include "core/report.h"
#include "core/thread.h"
#include "kmalloc.h"

namespace km {

void* alloc_large(size_t size, bool zero) {
  void* p = span_fits(size) ? span_alloc(size, zero) : huge_alloc(size, 0, zero);
  purge_poll();
  report_poll();
  return p;
}

namespace {
inline bool is_pow2(size_t x) { return x && !(x & (x - 1)); }

// km_stats from the core's Stats, field by field (the core never includes the public header).
void stats_copy(km_stats* out, bool os_walks) {
  Stats st;
  stats_get(&st, os_walks);
#define KM_STATS_COPY(name) out->name = st.name;
  KM_STATS_FIELDS(KM_STATS_COPY)
#undef KM_STATS_COPY
}
}  // namespace

void stats_counts(km_stats* out) { stats_copy(out, false); }

void* alloc_big(size_t size) {
  if (KM_LIKELY(size <= kLargestLane)) return lane_alloc(size, lane_of_formula(size));
  void* p = size <= kMaxRequest ? alloc_large(size, false) : nullptr;
  if (!p) errno = ENOMEM;
  return p;
}

size_t usable_size(const void* p, const char* call) {
  if (!p) return 0;
  uint8_t m = map_value(p);
  if (m == kMapSegment) {
    // Liveness, not the size, tells ours from theirs: a live block may have usable size 0 (secure
    // mode keeps the exact requested size, and malloc(0) is a block).
    const Page* pg = live_cell_page(p);
    if (!pg) fatal_pointer(call, "invalid pointer", p);
    return cell_usable_size(pg, p);
  }
  size_t n = m >= kMapHuge ? huge_usable_size(p) : 0;   // huge blocks are never empty: 0 is not ours
  if (!n) fatal_pointer(call, "invalid pointer", p);
  return n;
}

void* resize(void* p, size_t size) {
  if (size > kMaxRequest) return nullptr;
  size_t old;
  if (map_value(p) == kMapSegment) {
    // usable_size's test, with the page looked up once: realloc is often called on every append.
    Page* pg = live_cell_page(p);
    if (!pg) fatal_pointer("realloc", "invalid pointer", p);
    old = cell_usable_size(pg, p);
    if (pg->span) {
      if (size > kLargestLane && span_keeps(pg, size)) return p;
      if (size > kLargestLane && span_resize(pg, p, size)) return p;
    } else if (page_has(pg, kPageSecure)) {
      // In place when it fits and would not waste more than half of the cell.
      size_t cap = secure_capacity(pg);
      if (size <= cap && (size > cap / 2 || cap <= 64)) {
        secure_check_free(pg, static_cast<Block*>(p));   // the old canary first: no overflow lost
        secure_resize(pg, p, size);
        return p;
      }
    } else if (size <= old && (size > old / 2 || old <= 64)) {
      return p;
    }
  } else {
    old = usable_size(p, "realloc");   // a huge block (stops the program on a pointer that is not ours)
    // That still fits. A secure huge block, like a secure span (span_keeps), stays only while the
    // request rounds to the same pages: its usable size is exact to the page, and free_sized checks.
    if (secure_enabled() ? os::page_round(size) == old : size <= old && size > old / 2) return p;
    void* q;
    if (!span_fits(size) && huge_resize(p, size, &q)) return q;   // mremap: no page copied
  }
  void* q = alloc(size);
  if (!q) return nullptr;
  std::memcpy(q, p, size < old ? size : old);
  release(p);
  return q;
}

// The size rule of free_sized in secure mode. A secure cell keeps the exact size it was last
// requested (or realloc'd) with: `size` must equal it. A span or huge block in secure mode stays in
// place only while a realloc rounds to the same pages, so its usable size is its request rounded up
// to the page: `size` must round to it.
// free_aligned_sized also needs p to be aligned as asked. Anything else stops the program, naming
// the pointer.
void check_sized(const void* p, size_t size, size_t align, const char* call) {
  size_t usable = usable_size(p, call);   // stops on a pointer that is not ours
  bool cell = map_value(p) == kMapSegment && !page_of(segment_of(p), p)->span;
  bool ok = cell ? size == usable : size <= usable && size + os::kPageSize > usable;
  if (!ok) {
    Msg m;
    m.str(call).str("(): size mismatch ").ptr(p).str(" (size ").num(size);
    m.str(", the block holds ").num(usable).str(")\n").emit_stderr();
    os::abort_now();
  }
  if (align && (!is_pow2(align) || reinterpret_cast<uintptr_t>(p) % align != 0))
    fatal_pointer(call, "alignment mismatch", p);
}

bool owns(const void* p) {
  if (!p) return false;
  uint8_t m = map_value(p);
  if (m == kMapSegment) return cell_is_live(p);
  return m >= kMapHuge && huge_usable_size(p) != 0;
}

int trim() {
  runtime_init();
  Heap* h = tl_heap;
  size_t before = os::counters().purged_bytes + os::counters().munmap_count;
  if (h != &g_empty_heap && h != &g_dead_heap) {
    HeapBusy busy(h);
    heap_collect(h, false);
  }
  heaps_drain_abandoned();
  purge_sink_all();   // other live threads' heaps: what others freed into them
  purge_expired(INT64_MAX);
  segment_flush_spares();   // trim gives back the address space kept for reuse too
  return os::counters().purged_bytes + os::counters().munmap_count != before;
}

}  // namespace km

// ---------------------------------------------------------------------------- the C API

using km::fatal_pointer;

namespace {
inline void* enomem() {
  errno = ENOMEM;
  return nullptr;
}
using km::is_pow2;
}  // namespace

extern "C" {

KM_EXPORT void* km_malloc(size_t size) { return km::alloc(size); }

KM_EXPORT void* km_calloc(size_t count, size_t size) {
  void* p = km::alloc_zero(count, size);
  return KM_LIKELY(p) ? p : enomem();
}

KM_EXPORT void km_free(void* p) { km::release(p); }
KM_EXPORT void km_free_sized(void* p, size_t size) { km::release_sized(p, size, 0, "free_sized"); }
KM_EXPORT void km_free_aligned_sized(void* p, size_t align, size_t size) {
  km::release_sized(p, size, align, "free_aligned_sized");
}

KM_EXPORT void* km_realloc(void* p, size_t size) {
  if (!p) return km_malloc(size);
  if (size == 0) {   // glibc: realloc(p, 0) frees and returns NULL
    km::release(p);
    return nullptr;
  }
  void* q = km::resize(p, size);
  return q ? q : enomem();
}

KM_EXPORT void* km_reallocarray(void* p, size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) return enomem();
  return km_realloc(p, total);
}

KM_EXPORT int km_posix_memalign(void** out, size_t align, size_t size) {
  if (align < sizeof(void*) || !is_pow2(align)) return EINVAL;   // *out is left alone
  void* p = km::alloc_aligned(align, size);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}

KM_EXPORT void* km_aligned_alloc(size_t align, size_t size) {
  if (!is_pow2(align)) {   // glibc 2.38: alignment must be a power of two
    errno = EINVAL;
    return nullptr;
  }
  void* p = km::alloc_aligned(align, size);
  return p ? p : enomem();
}

KM_EXPORT void* km_memalign(size_t align, size_t size) {
  if (align > SIZE_MAX / 2 + 1) {   // glibc's bound; above PTRDIFF_MAX it fails with ENOMEM below
    errno = EINVAL;
    return nullptr;
  }
  if (align < km::kMinAlign) align = km::kMinAlign;
  if (!is_pow2(align)) align = size_t(1) << (64 - __builtin_clzll(align));   // round odd alignments up
  void* p = km::alloc_aligned(align, size);
  return p ? p : enomem();
}

KM_EXPORT void* km_valloc(size_t size) { return km_memalign(km::os::kPageSize, size); }

KM_EXPORT void* km_pvalloc(size_t size) {
  size_t rounded = km::os::page_round(size);
  if (rounded < size) return enomem();
  return km_memalign(km::os::kPageSize, rounded ? rounded : km::os::kPageSize);
}

KM_EXPORT size_t km_usable_size(const void* p) { return km::usable_size(p, "malloc_usable_size"); }
KM_EXPORT int km_owns(const void* p) { return km::owns(p); }
KM_EXPORT int km_trim(size_t) { return km::trim(); }
KM_EXPORT void km_stats_print(void) { km::stats_print(); }
static_assert(sizeof(km_stats) == sizeof(km::Stats), "km_stats and km::Stats hold the same counters");
KM_EXPORT void km_stats_get(km_stats* out) {
  if (out) km::stats_copy(out, true);
}

}  // extern "C"
