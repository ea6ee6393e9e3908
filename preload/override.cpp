// override.cpp — kmalloc as the process's malloc: every libc allocation function and every C++
// operator new/delete, each forwarding to one km function. No logic lives here but the failure policy
// of C++ new (call the new_handler, then throw std::bad_alloc).
//
// The library does not link the C++ runtime: a C program should not carry libstdc++ (about 1 MB of
// resident memory) for an operator new it never calls. When an allocation for operator new fails, the
// runtime's own std::get_new_handler and std::__throw_bad_alloc are looked up with dlsym (a C++
// program has them loaded), so the std::bad_alloc that reaches the program is the runtime's own.
#include <atomic>
#include <dlfcn.h>
#include <malloc.h>
#include <new>

#include "api/alloc.h"
#include "core/diag.h"
#include "kmalloc.h"

#define KM_ALIAS(name) __attribute__((alias(#name), visibility("default")))

extern "C" {

KM_EXPORT void* malloc(size_t size) { return km::alloc(size); }
KM_EXPORT void free(void* p) { km::release(p); }
KM_EXPORT void* calloc(size_t n, size_t size) { return km_calloc(n, size); }
KM_EXPORT void* realloc(void* p, size_t size) { return km_realloc(p, size); }
KM_EXPORT void* reallocarray(void* p, size_t n, size_t size) { return km_reallocarray(p, n, size); }
KM_EXPORT int posix_memalign(void** out, size_t align, size_t size) {
  return km_posix_memalign(out, align, size);
}
KM_EXPORT void* aligned_alloc(size_t align, size_t size) { return km_aligned_alloc(align, size); }
KM_EXPORT void* memalign(size_t align, size_t size) { return km_memalign(align, size); }
KM_EXPORT void* valloc(size_t size) { return km_valloc(size); }
KM_EXPORT void* pvalloc(size_t size) { return km_pvalloc(size); }
KM_EXPORT size_t malloc_usable_size(void* p) { return km_usable_size(p); }
KM_EXPORT void cfree(void* p) { km::release(p); }
KM_EXPORT void free_sized(void* p, size_t size) { km_free_sized(p, size); }   // C23
KM_EXPORT void free_aligned_sized(void* p, size_t align, size_t size) {
  km_free_aligned_sized(p, align, size);
}
KM_EXPORT int malloc_trim(size_t pad) { return km_trim(pad); }
KM_EXPORT void malloc_stats(void) { km_stats_print(); }
KM_EXPORT int mallopt(int, int) { return 1; }   // accepted; kmalloc is tuned by KMALLOC_* instead

KM_EXPORT struct mallinfo2 mallinfo2(void) {
  km_stats st;
  km::stats_counts(&st);   // none of the fields below needs mincore or /proc (a program may poll)
  struct mallinfo2 mi = {};
  mi.arena = st.mapped - st.huge_bytes - st.large_cached;     // segments: lane pages and spans
  mi.hblks = st.huge_count;
  mi.hblkhd = st.huge_bytes + st.large_cached;                // huge mappings, live and cached
  mi.uordblks = st.in_use;
  mi.fordblks = st.mapped > st.in_use ? st.mapped - st.in_use : 0;
  mi.keepcost = st.large_cached;
  mi.usmblks = st.peak_in_use;
  return mi;
}
KM_EXPORT struct mallinfo mallinfo(void) {
  struct mallinfo2 m = mallinfo2();
  struct mallinfo mi = {};
  auto clamp = [](size_t v) { return int(v > 0x7fffffff ? 0x7fffffff : v); };
  mi.arena = clamp(m.arena);
  mi.hblkhd = clamp(m.hblkhd);
  mi.uordblks = clamp(m.uordblks);
  mi.fordblks = clamp(m.fordblks);
  mi.keepcost = clamp(m.keepcost);
  mi.usmblks = clamp(m.usmblks);
  return mi;
}

// glibc's internal names, called by some programs and libraries directly. (The aliases need not
// repeat the targets' attributes.)
#pragma GCC diagnostic ignored "-Wmissing-attributes"
void* __libc_malloc(size_t) KM_ALIAS(malloc);
void __libc_free(void*) KM_ALIAS(free);
void* __libc_calloc(size_t, size_t) KM_ALIAS(calloc);
void* __libc_realloc(void*, size_t) KM_ALIAS(realloc);
void* __libc_memalign(size_t, size_t) KM_ALIAS(memalign);
void* __libc_valloc(size_t) KM_ALIAS(valloc);
void* __libc_pvalloc(size_t) KM_ALIAS(pvalloc);

}  // extern "C"

// ---------------------------------------------------------------------------- C++

namespace {

using Handler = void (*)();

// A function of the C++ runtime, looked up once (on the first failed operator new).
template <class Fn>
Fn runtime_fn(std::atomic<Fn>& cache, const char* mangled) {
  Fn f = cache.load(std::memory_order_acquire);
  if (!f) {
    f = reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, mangled));
    cache.store(f, std::memory_order_release);
  }
  return f;
}
std::atomic<Handler (*)()> g_get_new_handler{nullptr};
std::atomic<void (*)()> g_throw_bad_alloc{nullptr};

Handler current_new_handler() {
  auto get = runtime_fn(g_get_new_handler, "_ZSt15get_new_handlerv");   // std::get_new_handler()
  return get ? get() : nullptr;
}

[[noreturn]] void throw_bad_alloc() {
  if (auto t = runtime_fn(g_throw_bad_alloc, "_ZSt17__throw_bad_allocv")) t();   // throws
  km::fatal("operator new: out of memory, and no C++ runtime is loaded to throw std::bad_alloc");
}

// On failure call the new_handler until it gives up; then throw (or, nothrow, return nullptr).
// A handler that throws in a nothrow new lets its exception through (as mimalloc does).
template <bool kThrow, class Alloc>
__attribute__((noinline)) void* new_retry(Alloc again) {
  for (;;) {
    Handler h = current_new_handler();
    if (!h) {
      if (kThrow) throw_bad_alloc();
      return nullptr;
    }
    h();
    if (void* p = again()) return p;
  }
}

template <bool kThrow>
KM_INLINE void* new_plain(size_t size) {
  void* p = km::alloc(size);
  if (KM_LIKELY(p)) return p;
  return new_retry<kThrow>([size] { return km::alloc(size); });
}

template <bool kThrow>
KM_INLINE void* new_aligned(size_t size, std::align_val_t al) {
  void* p = km::alloc_aligned(size_t(al), size);
  if (KM_LIKELY(p)) return p;
  return new_retry<kThrow>([size, al] { return km::alloc_aligned(size_t(al), size); });
}

}  // namespace

KM_EXPORT void* operator new(size_t n) { return new_plain<true>(n); }
KM_EXPORT void* operator new[](size_t n) { return new_plain<true>(n); }
KM_EXPORT void* operator new(size_t n, const std::nothrow_t&) noexcept { return new_plain<false>(n); }
KM_EXPORT void* operator new[](size_t n, const std::nothrow_t&) noexcept { return new_plain<false>(n); }
KM_EXPORT void* operator new(size_t n, std::align_val_t al) { return new_aligned<true>(n, al); }
KM_EXPORT void* operator new[](size_t n, std::align_val_t al) { return new_aligned<true>(n, al); }
KM_EXPORT void* operator new(size_t n, std::align_val_t al, const std::nothrow_t&) noexcept {
  return new_aligned<false>(n, al);
}
KM_EXPORT void* operator new[](size_t n, std::align_val_t al, const std::nothrow_t&) noexcept {
  return new_aligned<false>(n, al);
}

// Sized delete often receives a wrong size in real programs: the size is ignored, metadata decides.
KM_EXPORT void operator delete(void* p) noexcept { km::release(p); }
KM_EXPORT void operator delete[](void* p) noexcept { km::release(p); }
KM_EXPORT void operator delete(void* p, const std::nothrow_t&) noexcept { km::release(p); }
KM_EXPORT void operator delete[](void* p, const std::nothrow_t&) noexcept { km::release(p); }
KM_EXPORT void operator delete(void* p, size_t) noexcept { km::release(p); }
KM_EXPORT void operator delete[](void* p, size_t) noexcept { km::release(p); }
KM_EXPORT void operator delete(void* p, std::align_val_t) noexcept { km::release(p); }
KM_EXPORT void operator delete[](void* p, std::align_val_t) noexcept { km::release(p); }
KM_EXPORT void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { km::release(p); }
KM_EXPORT void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { km::release(p); }
KM_EXPORT void operator delete(void* p, size_t, std::align_val_t) noexcept { km::release(p); }
KM_EXPORT void operator delete[](void* p, size_t, std::align_val_t) noexcept { km::release(p); }
