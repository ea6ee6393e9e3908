// probe.cpp — the live-bytes probe of scripts/ab (libkmprobe.so).
//
// Preloaded in front of the allocator under test (LD_PRELOAD=libkmprobe.so:liballoc.so, or alone for
// glibc), it forwards every call of the malloc family and of operator new/delete to the next
// definition (dlsym RTLD_NEXT) and counts the bytes the program requested and has not freed yet. The
// counts go to a shared file (probe_shared.h) that the sampler reads every few milliseconds.
//
// To know the requested size at free time without changing what the allocator sees, the probe keeps
// a side table: one byte per 8-byte granule of address space (every allocator returns at least
// 8-byte aligned blocks), in leaves covering 1 MiB each, mapped lazily under a flat top-level array.
// A cell holds size+1 for small blocks; a large block keeps its size in the cells of its own next
// granules (see "The size table"). It costs one byte per 8 bytes of heap at most. The table is private
// memory, so fork() copies it with the heap. Its resident pages are counted exactly (a page is counted
// the first time the probe writes into it; nothing is ever purged) and published as probe_bytes, which
// the sampler subtracts from RSS.
//
// Re-entry: dlsym may call malloc/calloc before the real functions are known; those are served from a
// static buffer. A thread-local depth counter marks "inside the probe": calls made from there (e.g.
// libstdc++'s operator new calling malloc) are forwarded without counting, so nothing counts twice.
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>

#include "probe_shared.h"

#define KMP_EXPORT extern "C" __attribute__((visibility("default")))
#define KMP_LIKELY(x) __builtin_expect(!!(x), 1)
#define KMP_UNLIKELY(x) __builtin_expect(!!(x), 0)

namespace km::probe {
namespace {

// ---------------------------------------------------------------------------------------------
// The real functions (next in the lookup order).
using MallocFn = void* (*)(size_t);
using FreeFn = void (*)(void*);
using CallocFn = void* (*)(size_t, size_t);
using ReallocFn = void* (*)(void*, size_t);
using ReallocArrayFn = void* (*)(void*, size_t, size_t);
using PosixMemalignFn = int (*)(void**, size_t, size_t);
using AlignedAllocFn = void* (*)(size_t, size_t);
using NewFn = void* (*)(size_t);
using NewNtFn = void* (*)(size_t, const std::nothrow_t&);
using NewAlFn = void* (*)(size_t, std::align_val_t);
using NewAlNtFn = void* (*)(size_t, std::align_val_t, const std::nothrow_t&);
using DelFn = void (*)(void*);
using DelSzFn = void (*)(void*, size_t);
using DelAlFn = void (*)(void*, std::align_val_t);
using DelSzAlFn = void (*)(void*, size_t, std::align_val_t);

struct Real {
  MallocFn malloc;
  FreeFn free;
  CallocFn calloc;
  ReallocFn realloc;
  ReallocArrayFn reallocarray;
  PosixMemalignFn posix_memalign;
  AlignedAllocFn aligned_alloc;
  AlignedAllocFn memalign;
  MallocFn valloc;
  MallocFn pvalloc;
  NewFn nw, na;
  NewNtFn nw_nt, na_nt;
  NewAlFn nw_al, na_al;
  NewAlNtFn nw_al_nt, na_al_nt;
  DelFn dl, da;
  DelSzFn dl_sz, da_sz;
  DelAlFn dl_al, da_al;
  DelSzAlFn dl_sz_al, da_sz_al;
};
Real real;

std::atomic<int> g_state{0};  // 0 = not started, 1 = initialising, 2 = ready
thread_local int t_depth __attribute__((tls_model("initial-exec"))) = 0;
thread_local int t_stripe __attribute__((tls_model("initial-exec"))) = -1;

// A scope in which the probe's own calls are not counted.
struct Inside {
  Inside() { ++t_depth; }
  ~Inside() { --t_depth; }
};

// ---------------------------------------------------------------------------------------------
// Static buffer for the allocations dlsym makes before the real malloc is known. Never reused.
alignas(64) char g_boot[256 * 1024];
std::atomic<size_t> g_boot_used{0};

bool in_boot(const void* p) {
  return p >= static_cast<const void*>(g_boot) && p < static_cast<const void*>(g_boot + sizeof g_boot);
}

void* boot_alloc(size_t n, size_t align = 16) {
  if (align < 16) align = 16;
  size_t need = ((n + 15) & ~size_t(15)) + align + 16;
  size_t at = g_boot_used.fetch_add(need);
  if (at + need > sizeof g_boot) return nullptr;
  uintptr_t base = reinterpret_cast<uintptr_t>(g_boot + at + 16);
  uintptr_t p = (base + align - 1) & ~(uintptr_t(align) - 1);
  reinterpret_cast<size_t*>(p)[-1] = n;  // size, for realloc of a boot block
  return reinterpret_cast<void*>(p);
}

// ---------------------------------------------------------------------------------------------
// Counters: the slot in the shared file, or a private one when KM_PROBE_FILE is not set.
ProcSlot g_private_slot;
ProcSlot* g_slot = &g_private_slot;
Header* g_header = nullptr;

// The calling thread's stripe: its own (plain stores suffice) or, past kStripes-1 threads, the
// shared stripe 0 (atomic adds).
inline void bump(std::atomic<int64_t> Stripe::*field, int64_t delta) {
  if (KMP_UNLIKELY(t_stripe < 0)) {
    static std::atomic<unsigned> next{1};
    unsigned i = next.fetch_add(1, std::memory_order_relaxed);
    t_stripe = i < kStripes ? int(i) : 0;
  }
  std::atomic<int64_t>& c = g_slot->stripes[t_stripe].*field;
  if (KMP_LIKELY(t_stripe != 0)) {
    c.store(c.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
  } else {
    c.fetch_add(delta, std::memory_order_relaxed);
  }
}

// Claims a free slot (or the slot of a dead process) for `pid`, zeroed, with `live` as its start.
ProcSlot* claim_slot(int32_t pid, int64_t live, uint64_t probe_bytes) {
  if (!g_header) return nullptr;
  auto* slots = reinterpret_cast<ProcSlot*>(reinterpret_cast<char*>(g_header) + kSlotsOffset);
  // Pass 0: our own pid's slot, left by the image we were exec'ed from (its heap is gone with it);
  // pass 1: a free slot; pass 2: the slot of a process that no longer exists.
  for (int pass = 0; pass < 3; ++pass) {
    for (uint32_t i = 0; i < kMaxProcs; ++i) {
      ProcSlot& s = slots[i];
      int32_t cur = s.pid.load(std::memory_order_relaxed);
      bool take = pass == 0   ? cur == pid
                  : pass == 1 ? cur == 0
                              : (cur > 0 && kill(cur, 0) != 0 && errno == ESRCH);
      if (!take || !s.pid.compare_exchange_strong(cur, -1)) continue;
      for (auto& st : s.stripes) {
        st.live.store(0, std::memory_order_relaxed);
        st.allocs.store(0, std::memory_order_relaxed);
        st.frees.store(0, std::memory_order_relaxed);
      }
      s.stripes[0].live.store(live, std::memory_order_relaxed);
      s.probe_bytes.store(probe_bytes, std::memory_order_relaxed);
      s.foreign_frees.store(0, std::memory_order_relaxed);
      s.untracked.store(0, std::memory_order_relaxed);
      s.pid.store(pid, std::memory_order_release);
      return &s;
    }
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// The size table: one byte per 8-byte granule. Cell 0 = not a block the probe handed out;
// 1..254 = size + 1; 255 = a size >= 254, stored as 8 bytes in the cells of the block's own next 8
// granules (a block that large spans them, and no other block can start there while it lives).
constexpr unsigned kGranuleShift = 3;
constexpr unsigned kLeafShift = 20;                              // 1 MiB of address space per leaf
constexpr size_t kLeafCells = size_t(1) << (kLeafShift - kGranuleShift);
constexpr size_t kPage = 4096;
constexpr size_t kLeafPages = kLeafCells / kPage;                // 32
constexpr unsigned kAddressBits = 47;
constexpr size_t kTopEntries = size_t(1) << (kAddressBits - kLeafShift);
constexpr size_t kTopBytes = kTopEntries * sizeof(void*);        // 1 GiB of address space, sparse
constexpr uint8_t kBig = 255;
static_assert(kLeafPages <= 64, "one word of touched bits per leaf");

struct Leaf {
  uint8_t cells[kLeafCells];
  std::atomic<uint64_t> touched;  // pages of `cells` written at least once
};

std::atomic<Leaf*>* g_top = nullptr;
std::atomic<uint64_t> g_top_touched[kTopBytes / kPage / 64];

void add_probe_bytes(uint64_t n) { g_slot->probe_bytes.fetch_add(n, std::memory_order_relaxed); }

void* map_private(size_t n) {
  void* p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  madvise(p, n, MADV_NOHUGEPAGE);  // a huge page would make one cell cost 2 MiB
  return p;
}

// The leaf covering `addr`, created if `create`. nullptr when out of range or out of memory.
Leaf* leaf_for(uintptr_t addr, bool create) {
  size_t i = addr >> kLeafShift;
  if (KMP_UNLIKELY(i >= kTopEntries || !g_top)) return nullptr;
  Leaf* leaf = g_top[i].load(std::memory_order_acquire);
  if (KMP_LIKELY(leaf != nullptr) || !create) return leaf;
  auto* fresh = static_cast<Leaf*>(map_private(sizeof(Leaf)));
  if (!fresh) return nullptr;
  if (!g_top[i].compare_exchange_strong(leaf, fresh, std::memory_order_acq_rel)) {
    munmap(fresh, sizeof(Leaf));
    return leaf;
  }
  size_t top_page = i * sizeof(void*) / kPage;
  uint64_t bit = uint64_t(1) << (top_page % 64);
  uint64_t extra = kPage;  // the leaf's page holding `touched`
  if (!(g_top_touched[top_page / 64].fetch_or(bit, std::memory_order_relaxed) & bit)) extra += kPage;
  add_probe_bytes(extra);
  return fresh;
}

inline size_t cell_index(uintptr_t a) { return (a & ((uintptr_t(1) << kLeafShift) - 1)) >> kGranuleShift; }

// Counts the page of `leaf` holding cell c the first time it is written.
inline void touch(Leaf* leaf, size_t c) {
  uint64_t bit = uint64_t(1) << (c / kPage);
  if (KMP_UNLIKELY(!(leaf->touched.load(std::memory_order_relaxed) & bit))) {
    if (!(leaf->touched.fetch_or(bit, std::memory_order_relaxed) & bit)) add_probe_bytes(kPage);
  }
}

// Byte k (1..8) of a big block's size lives in the cell of granule a + 8k (maybe in the next leaf).
uint8_t* size_cell(uintptr_t a, Leaf* leaf, unsigned k, bool create) {
  size_t c = cell_index(a) + k;
  if (KMP_LIKELY(c < kLeafCells)) return &leaf->cells[c];
  Leaf* next = leaf_for(a + 8 * k, create);
  return next ? &next->cells[c - kLeafCells] : nullptr;
}

// Remembers that `p` holds `n` requested bytes and counts them.
void record(void* p, size_t n) {
  if (!p) return;
  auto a = reinterpret_cast<uintptr_t>(p);
  Leaf* leaf = leaf_for(a, true);
  if (KMP_UNLIKELY(!leaf || (a & 7))) {
    g_slot->untracked.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  size_t c = cell_index(a);
  touch(leaf, c);
  if (KMP_LIKELY(n < kBig - 1)) {
    leaf->cells[c] = uint8_t(n + 1);
  } else {
    for (unsigned k = 1; k <= 8; ++k) {
      uint8_t* cell = size_cell(a, leaf, k, true);
      if (!cell) {
        g_slot->untracked.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      Leaf* owner = c + k < kLeafCells ? leaf : leaf_for(a + 8 * k, false);
      touch(owner, (c + k) % kLeafCells);
      *cell = uint8_t(uint64_t(n) >> (8 * (k - 1)));
    }
    leaf->cells[c] = kBig;
  }
  bump(&Stripe::live, int64_t(n));
  bump(&Stripe::allocs, 1);
}

// Forgets `p` and uncounts its bytes. Returns the requested size, or -1 if the probe never saw p.
// Must run before the real free: once freed, the allocator may hand p to another thread.
int64_t forget(void* p) {
  auto a = reinterpret_cast<uintptr_t>(p);
  Leaf* leaf = leaf_for(a, false);
  size_t c = cell_index(a);
  uint8_t v = leaf && !(a & 7) ? leaf->cells[c] : 0;
  if (v == 0) {
    g_slot->foreign_frees.fetch_add(1, std::memory_order_relaxed);
    return -1;
  }
  leaf->cells[c] = 0;
  int64_t n = int64_t(v) - 1;
  if (v == kBig) {
    uint64_t size = 0;
    for (unsigned k = 1; k <= 8; ++k) {
      uint8_t* cell = size_cell(a, leaf, k, false);
      size |= uint64_t(*cell) << (8 * (k - 1));
      *cell = 0;
    }
    n = int64_t(size);
  }
  bump(&Stripe::live, -n);
  bump(&Stripe::frees, 1);
  return n;
}

// ---------------------------------------------------------------------------------------------
// Initialisation: resolve the real functions, map the table and the shared file.
template <class F>
void resolve(F& f, const char* name) {
  f = reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
}

void after_fork_in_child() {
  if (g_slot == &g_private_slot) return;
  int64_t live = 0;
  for (auto& s : g_slot->stripes) live += s.live.load(std::memory_order_relaxed);
  // The child's thread keeps its stripe index; the new slot starts with the whole sum in stripe 0.
  ProcSlot* mine = claim_slot(int32_t(getpid()), live, g_slot->probe_bytes.load());
  if (mine) {
    g_slot = mine;
  } else {  // no room: count privately so the parent's slot stays right
    g_private_slot.stripes[0].live.store(live);
    g_slot = &g_private_slot;
  }
}

void init() {
  int expected = 0;
  if (!g_state.compare_exchange_strong(expected, 1)) {
    while (g_state.load(std::memory_order_acquire) != 2) {
    }
    return;
  }
  Inside inside;
  resolve(real.malloc, "malloc");
  resolve(real.free, "free");
  resolve(real.calloc, "calloc");
  resolve(real.realloc, "realloc");
  resolve(real.reallocarray, "reallocarray");
  resolve(real.posix_memalign, "posix_memalign");
  resolve(real.aligned_alloc, "aligned_alloc");
  resolve(real.memalign, "memalign");
  resolve(real.valloc, "valloc");
  resolve(real.pvalloc, "pvalloc");
  resolve(real.nw, "_Znwm");
  resolve(real.na, "_Znam");
  resolve(real.nw_nt, "_ZnwmRKSt9nothrow_t");
  resolve(real.na_nt, "_ZnamRKSt9nothrow_t");
  resolve(real.nw_al, "_ZnwmSt11align_val_t");
  resolve(real.na_al, "_ZnamSt11align_val_t");
  resolve(real.nw_al_nt, "_ZnwmSt11align_val_tRKSt9nothrow_t");
  resolve(real.na_al_nt, "_ZnamSt11align_val_tRKSt9nothrow_t");
  resolve(real.dl, "_ZdlPv");
  resolve(real.da, "_ZdaPv");
  resolve(real.dl_sz, "_ZdlPvm");
  resolve(real.da_sz, "_ZdaPvm");
  resolve(real.dl_al, "_ZdlPvSt11align_val_t");
  resolve(real.da_al, "_ZdaPvSt11align_val_t");
  resolve(real.dl_sz_al, "_ZdlPvmSt11align_val_t");
  resolve(real.da_sz_al, "_ZdaPvmSt11align_val_t");
  if (!real.malloc || !real.free || !real.calloc || !real.realloc) {
    static const char msg[] = "kmprobe: cannot find the real malloc/free (dlsym RTLD_NEXT)\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(127);
  }
  g_top = static_cast<std::atomic<Leaf*>*>(map_private(kTopBytes));
  const char* path = getenv("KM_PROBE_FILE");
  if (path && *path) {
    int fd = open(path, O_RDWR | O_CLOEXEC);
    void* m = fd >= 0 ? mmap(nullptr, kProbeFileSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
    if (fd >= 0) close(fd);
    if (m != MAP_FAILED) {
      g_header = static_cast<Header*>(m);
      if (g_header->magic != kMagic) {  // first process of the run: the file is all zeros
        g_header->version = kVersion;
        g_header->max_procs = kMaxProcs;
        g_header->stripes = kStripes;
        g_header->slot_size = sizeof(ProcSlot);
        g_header->slots_offset = kSlotsOffset;
        __atomic_store_n(&g_header->magic, kMagic, __ATOMIC_RELEASE);
      }
      ProcSlot* mine = claim_slot(int32_t(getpid()), 0, 0);
      if (mine) g_slot = mine;
    } else {
      static const char msg[] = "kmprobe: cannot map KM_PROBE_FILE; counting privately\n";
      (void)!write(2, msg, sizeof msg - 1);
    }
  }
  pthread_atfork(nullptr, nullptr, after_fork_in_child);
  g_state.store(2, std::memory_order_release);
}

// True when the call must be forwarded without counting (inside the probe, or before init ends).
inline bool passthrough() {
  if (KMP_LIKELY(t_depth == 0 && g_state.load(std::memory_order_acquire) == 2)) return false;
  if (t_depth == 0) init();
  return t_depth != 0;
}

__attribute__((constructor(101))) void probe_ctor() {
  if (g_state.load() == 0) init();
}

}  // namespace
}  // namespace km::probe

using namespace km::probe;

// ---------------------------------------------------------------------------------------------
// The C interface.
KMP_EXPORT void* malloc(size_t n) {
  if (KMP_UNLIKELY(passthrough())) return real.malloc ? real.malloc(n) : boot_alloc(n);
  void* p = real.malloc(n);
  record(p, n);
  return p;
}

KMP_EXPORT void free(void* p) {
  if (!p || KMP_UNLIKELY(in_boot(p))) return;
  if (KMP_UNLIKELY(passthrough())) return real.free(p);
  forget(p);
  real.free(p);
}

KMP_EXPORT void* calloc(size_t k, size_t n) {
  if (KMP_UNLIKELY(passthrough())) {
    if (real.calloc) return real.calloc(k, n);
    size_t total;
    return __builtin_mul_overflow(k, n, &total) ? nullptr : boot_alloc(total);  // boot memory is zero
  }
  void* p = real.calloc(k, n);
  record(p, k * n);
  return p;
}

KMP_EXPORT void* realloc(void* p, size_t n) {
  if (KMP_UNLIKELY(p && in_boot(p))) {
    void* q = malloc(n);
    if (q) memcpy(q, p, reinterpret_cast<size_t*>(p)[-1] < n ? reinterpret_cast<size_t*>(p)[-1] : n);
    return q;
  }
  if (KMP_UNLIKELY(passthrough())) return real.realloc ? real.realloc(p, n) : boot_alloc(n);
  if (!p) return malloc(n);
  int64_t old = forget(p);
  void* q = real.realloc(p, n);
  if (q) {
    record(q, n);
  } else if (n != 0 && old >= 0) {  // failed: p is intact and still holds its bytes
    record(p, size_t(old));
  }  // else realloc(p, 0) freed p (glibc)
  return q;
}

KMP_EXPORT void* reallocarray(void* p, size_t k, size_t n) {
  size_t total;
  if (__builtin_mul_overflow(k, n, &total)) {
    errno = ENOMEM;
    return nullptr;
  }
  return realloc(p, total);
}

KMP_EXPORT int posix_memalign(void** out, size_t align, size_t n) {
  if (KMP_UNLIKELY(passthrough())) {
    if (real.posix_memalign) return real.posix_memalign(out, align, n);
    void* p = boot_alloc(n, align);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
  }
  int err = real.posix_memalign(out, align, n);
  if (err == 0) record(*out, n);
  return err;
}

KMP_EXPORT void* aligned_alloc(size_t align, size_t n) {
  if (KMP_UNLIKELY(passthrough())) return real.aligned_alloc ? real.aligned_alloc(align, n) : boot_alloc(n, align);
  void* p = real.aligned_alloc(align, n);
  record(p, n);
  return p;
}

KMP_EXPORT void* memalign(size_t align, size_t n) {
  if (KMP_UNLIKELY(passthrough())) return real.memalign ? real.memalign(align, n) : boot_alloc(n, align);
  void* p = real.memalign(align, n);
  record(p, n);
  return p;
}

KMP_EXPORT void* valloc(size_t n) {
  if (KMP_UNLIKELY(passthrough())) return real.valloc ? real.valloc(n) : boot_alloc(n, 4096);
  void* p = real.valloc(n);
  record(p, n);
  return p;
}

KMP_EXPORT void* pvalloc(size_t n) {
  if (KMP_UNLIKELY(passthrough())) return real.pvalloc ? real.pvalloc(n) : boot_alloc(n, 4096);
  void* p = real.pvalloc(n);
  record(p, n);
  return p;
}

// ---------------------------------------------------------------------------------------------
// C++ operators: forwarded to the next definition (the allocator's own, or libstdc++'s, which calls
// malloc: the depth counter keeps that inner malloc from counting again).
namespace {
template <class F, class... A>
void* counted_new(F f, size_t n, A... a) {
  void* p;
  {
    Inside inside;
    p = f(n, a...);
  }
  record(p, n);
  return p;
}
template <class F, class... A>
void counted_delete(F f, void* p, A... a) {
  if (!p) return;
  forget(p);
  Inside inside;
  f(p, a...);
}
}  // namespace

#define KMP_NEW(fn, ...)                                                              \
  if (KMP_UNLIKELY(passthrough())) return real.fn(n __VA_OPT__(, ) __VA_ARGS__); \
  return counted_new(real.fn, n __VA_OPT__(, ) __VA_ARGS__)
#define KMP_DELETE(fn, ...)                                                           \
  if (KMP_UNLIKELY(!p || in_boot(p))) return;                                        \
  if (KMP_UNLIKELY(passthrough())) return real.fn(p __VA_OPT__(, ) __VA_ARGS__);  \
  counted_delete(real.fn, p __VA_OPT__(, ) __VA_ARGS__)
#define KMP_OP __attribute__((visibility("default")))

KMP_OP void* operator new(size_t n) { KMP_NEW(nw); }
KMP_OP void* operator new[](size_t n) { KMP_NEW(na); }
KMP_OP void* operator new(size_t n, const std::nothrow_t& t) noexcept { KMP_NEW(nw_nt, t); }
KMP_OP void* operator new[](size_t n, const std::nothrow_t& t) noexcept { KMP_NEW(na_nt, t); }
KMP_OP void* operator new(size_t n, std::align_val_t al) { KMP_NEW(nw_al, al); }
KMP_OP void* operator new[](size_t n, std::align_val_t al) { KMP_NEW(na_al, al); }
KMP_OP void* operator new(size_t n, std::align_val_t al, const std::nothrow_t& t) noexcept {
  KMP_NEW(nw_al_nt, al, t);
}
KMP_OP void* operator new[](size_t n, std::align_val_t al, const std::nothrow_t& t) noexcept {
  KMP_NEW(na_al_nt, al, t);
}
KMP_OP void operator delete(void* p) noexcept { KMP_DELETE(dl); }
KMP_OP void operator delete[](void* p) noexcept { KMP_DELETE(da); }
KMP_OP void operator delete(void* p, size_t n) noexcept { KMP_DELETE(dl_sz, n); }
KMP_OP void operator delete[](void* p, size_t n) noexcept { KMP_DELETE(da_sz, n); }
KMP_OP void operator delete(void* p, std::align_val_t al) noexcept { KMP_DELETE(dl_al, al); }
KMP_OP void operator delete[](void* p, std::align_val_t al) noexcept { KMP_DELETE(da_al, al); }
KMP_OP void operator delete(void* p, size_t n, std::align_val_t al) noexcept { KMP_DELETE(dl_sz_al, n, al); }
KMP_OP void operator delete[](void* p, size_t n, std::align_val_t al) noexcept { KMP_DELETE(da_sz_al, n, al); }
// The nothrow deletes simply delete.
KMP_OP void operator delete(void* p, const std::nothrow_t&) noexcept { operator delete(p); }
KMP_OP void operator delete[](void* p, const std::nothrow_t&) noexcept { operator delete[](p); }
KMP_OP void operator delete(void* p, std::align_val_t al, const std::nothrow_t&) noexcept {
  operator delete(p, al);
}
KMP_OP void operator delete[](void* p, std::align_val_t al, const std::nothrow_t&) noexcept {
  operator delete[](p, al);
}
