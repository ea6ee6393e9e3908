// kmalloc.hpp — C++ wrappers over kmalloc.h and kmem.h (header-only, C++17 or later).
//
//   km::allocator<T>       a standard allocator over km_malloc/km_free, for any std container
//   km::arena, km::pool,   RAII owners of a kmarena, kmpool, kmfifo; move-only
//   km::fifo
//   km::lin_mark           RAII mark of this thread's linear stack: releases to the mark on scope exit
//   km::ptr                RAII owner of a kmptr: kmfree (or kmshred when tainted) on scope exit
//   km::arena_resource,    std::pmr::memory_resource over an arena / a pool, for std::pmr containers
//   km::pool_resource
//
// Failure policy: constructors of the owners and allocate() of the allocator and the resources throw
// std::bad_alloc when exceptions are enabled. Built with -fno-exceptions, the owners are left empty
// (test them with operator bool) and the allocator and resources abort. Every other member reports
// errors as the C function it calls does (NULL + errno, or an errno value).
//
// Threads: arena, pool and fifo objects (and so their resources) have a single owner; use one from
// one thread at a time. km::allocator is as thread-safe as malloc; lin marks are per thread.
#ifndef KMALLOC_HPP
#define KMALLOC_HPP

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <memory_resource>
#include <new>
#include <type_traits>
#include <utility>

#include "kmalloc.h"

namespace km {

namespace detail {
[[noreturn]] inline void bad_alloc() {
#if defined(__cpp_exceptions)
  throw std::bad_alloc();
#else
  std::abort();
#endif
}
inline void check(const void* p) {
#if defined(__cpp_exceptions)
  if (p == nullptr) throw std::bad_alloc();
#else
  (void)p;
#endif
}

// The move-only ownership of one kmem object (arena, pool, fifo): Destroy(p) runs when the owner
// lets go of it. Made by the owners' constructors only.
template <class T, void (*Destroy)(T*)>
class owner {
 public:
  owner(owner&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  owner& operator=(owner&& o) noexcept {
    if (this != &o) {
      if (p_) Destroy(p_);
      p_ = std::exchange(o.p_, nullptr);
    }
    return *this;
  }
  owner(const owner&) = delete;
  owner& operator=(const owner&) = delete;
  ~owner() {
    if (p_) Destroy(p_);
  }

  T* get() const noexcept { return p_; }
  T* release() noexcept { return std::exchange(p_, nullptr); }
  explicit operator bool() const noexcept { return p_ != nullptr; }

 protected:
  explicit owner(T* p) : p_(p) { check(p_); }
  T* p_;
};
}  // namespace detail

// The bytes kmem puts in front of a ref cell's and a tree node's data. A pool used as the `src` of
// ref cells (tree nodes) of n bytes needs cells of at least n + ref_overhead (n + tree_overhead).
inline constexpr std::size_t ref_overhead = 32;
inline constexpr std::size_t tree_overhead = 64;

// ---- allocator --------------------------------------------------------------------------------------

// A stateless standard allocator over kmalloc's heap; all instances compare equal.
template <class T>
struct allocator {
  using value_type = T;
  using is_always_equal = std::true_type;
  using propagate_on_container_move_assignment = std::true_type;

  allocator() noexcept = default;
  template <class U>
  allocator(const allocator<U>&) noexcept {}

  [[nodiscard]] T* allocate(std::size_t n) {
    if (n > std::numeric_limits<std::size_t>::max() / sizeof(T)) {
#if defined(__cpp_exceptions)
      throw std::bad_array_new_length();
#else
      std::abort();
#endif
    }
    void* p = nullptr;
    if constexpr (alignof(T) <= 16) {
      p = km_malloc(n * sizeof(T));
    } else if (km_posix_memalign(&p, alignof(T), n * sizeof(T)) != 0) {
      p = nullptr;
    }
    if (p == nullptr) detail::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t) noexcept { km_free(p); }

  template <class U>
  friend bool operator==(const allocator&, const allocator<U>&) noexcept { return true; }
};

// ---- owners -----------------------------------------------------------------------------------------

// Owns a kmarena: small requests carved from blocks of blocksz bytes, reset() rewinds them all.
class arena : public detail::owner<kmarena, kmarenax> {
 public:
  explicit arena(std::size_t blocksz = 4096) : owner(kmarenai(blocksz)) {}

  void* alloc(std::size_t n) noexcept { return kmarenaa(p_, n); }            // 16-aligned
  void* alloc_unaligned(std::size_t n) noexcept { return kmarenan(p_, n); }  // packed
  void* zalloc(std::size_t n) noexcept { return kmarenaz(p_, n); }
  // Construct a T in the arena. Its destructor is never run, hence trivially destructible types only.
  template <class T, class... Args>
  T* make(Args&&... args) {
    static_assert(std::is_trivially_destructible_v<T>, "arena memory is released without destructors");
    static_assert(alignof(T) <= 16, "arena allocations are 16-aligned");
    void* p = kmarenaa(p_, sizeof(T));
    if (p == nullptr) detail::bad_alloc();
    return ::new (p) T(std::forward<Args>(args)...);
  }
  void free(void* p) noexcept { kmarenaf(p_, p); }  // frees large blocks only; small ones wait for reset
  void reset() noexcept { kmarenar(p_); }
  kmcell* src() const noexcept { return reinterpret_cast<kmcell*>(p_); }  // as a kmem source
};

// Owns a kmpool of n cells of cellsz bytes, drawn from src (nullptr = the heap).
class pool : public detail::owner<kmpool, kmpoolx> {
 public:
  pool(std::size_t cellsz, std::size_t n, kmcell* src = nullptr)
      : owner(kmpooli(src, cellsz, n)), cellsz_(cellsz) {}
  pool(std::size_t cellsz, std::size_t n, arena& src) : pool(cellsz, n, src.src()) {}

  void* alloc() noexcept { return kmpoola(p_); }  // NULL + ENOMEM when exhausted
  void* zalloc() noexcept { return kmpoolz(p_); }
  static void free(void* cell) noexcept { kmpoolf(cell); }
  static void shred(void* cell) noexcept { kmpools(cell); }

  std::size_t cell_size() const noexcept { return cellsz_; }
  kmcell* src() const noexcept { return reinterpret_cast<kmcell*>(p_); }  // as a kmem source

 private:
  std::size_t cellsz_;
};

// Owns a kmfifo over a ring of `capacity` bytes (a power of two; see kmfifop2).
class fifo : public detail::owner<kmfifo, kmfifox> {
 public:
  explicit fifo(std::size_t capacity) : owner(kmfifoi(capacity, 0)) {}

  // These return 0 or an errno value, as kmfifopush / kmfifoshift / kmfifof do.
  int push(const void* data, std::size_t n) noexcept { return kmfifopush(p_, data, n); }
  int shift(void* buf, std::size_t bufsize, std::size_t& n) noexcept { return kmfifoshift(p_, buf, &n, bufsize); }
  void* reserve(std::size_t n) noexcept { return kmfifoa(p_, n); }  // NULL + errno
  int free_oldest(void* p) noexcept { return kmfifof(p_, p); }
};

// A mark on this thread's linear stack; everything kmlina'd after it is released when it goes out
// of scope (or at release_now()). Marks must be released in reverse order of creation.
class lin_mark {
 public:
  lin_mark() noexcept : mark_(kmlini()) {}
  lin_mark(const lin_mark&) = delete;
  lin_mark& operator=(const lin_mark&) = delete;
  ~lin_mark() { release_now(); }

  void release_now() noexcept {
    if (mark_) kmlinx(mark_);
    mark_ = nullptr;
  }
  void* mark() const noexcept { return mark_; }
  explicit operator bool() const noexcept { return mark_ != nullptr; }

  static void* alloc(std::size_t n) noexcept { return kmlina(n); }
  static void* zalloc(std::size_t n) noexcept { return kmlinz(n); }

 private:
  void* mark_;
};

// Owns one kmptr: kmfree on destruction (a tainted pointer is shredded).
class ptr {
 public:
  ptr() noexcept : p_{kmkind_none, kmshred_no, nullptr, nullptr} {}
  explicit ptr(kmptr p) noexcept : p_(p) {}
  ptr(ptr&& o) noexcept : p_(std::exchange(o.p_, kmptr{kmkind_none, kmshred_no, nullptr, nullptr})) {}
  ptr& operator=(ptr&& o) noexcept {
    if (this != &o) {
      kmfree(p_);
      p_ = std::exchange(o.p_, kmptr{kmkind_none, kmshred_no, nullptr, nullptr});
    }
    return *this;
  }
  ptr(const ptr&) = delete;
  ptr& operator=(const ptr&) = delete;
  ~ptr() { kmfree(p_); }

  void* get() const noexcept { return p_.ref; }
  const kmptr& raw() const noexcept { return p_; }
  void taint() noexcept { kmtaint(&p_); }
  ptr dup() const noexcept { return ptr(kmdup(p_)); }
  kmptr release() noexcept { return std::exchange(p_, kmptr{kmkind_none, kmshred_no, nullptr, nullptr}); }
  explicit operator bool() const noexcept { return p_.ref != nullptr; }

 private:
  kmptr p_;
};

// ---- std::pmr resources -----------------------------------------------------------------------------

// Memory from an arena. deallocate frees large blocks at once and leaves small ones to reset().
// Alignments above 16 are honoured by over-allocating (such blocks are released only by reset()).
class arena_resource : public std::pmr::memory_resource {
 public:
  explicit arena_resource(kmarena* a) noexcept : a_(a) {}
  explicit arena_resource(arena& a) noexcept : a_(a.get()) {}
  kmarena* get() const noexcept { return a_; }

 private:
  void* do_allocate(std::size_t bytes, std::size_t align) override {
    if (bytes == 0) bytes = 1;
    void* p = nullptr;
    if (align <= 16) {
      p = kmarenaa(a_, bytes);
    } else if (bytes <= std::numeric_limits<std::size_t>::max() - align) {
      void* raw = kmarenan(a_, bytes + align - 1);
      if (raw) p = reinterpret_cast<void*>((reinterpret_cast<std::uintptr_t>(raw) + align - 1) & ~(std::uintptr_t{align} - 1));
    }
    if (p == nullptr) detail::bad_alloc();
    return p;
  }
  void do_deallocate(void* p, std::size_t, std::size_t align) override {
    if (align <= 16) kmarenaf(a_, p);
  }
  bool do_is_equal(const std::pmr::memory_resource& o) const noexcept override { return this == &o; }

  kmarena* a_;
};

// Memory from a pool: requests that fit a cell (bytes <= cell size, alignment <= 16) take a cell;
// bigger ones go to `upstream`. An exhausted pool is bad_alloc.
class pool_resource : public std::pmr::memory_resource {
 public:
  pool_resource(kmpool* p, std::size_t cellsz,
                std::pmr::memory_resource* upstream = std::pmr::get_default_resource()) noexcept
      : p_(p), cellsz_(cellsz), upstream_(upstream) {}
  explicit pool_resource(pool& p, std::pmr::memory_resource* upstream = std::pmr::get_default_resource()) noexcept
      : pool_resource(p.get(), p.cell_size(), upstream) {}
  kmpool* get() const noexcept { return p_; }

 private:
  bool fits(std::size_t bytes, std::size_t align) const noexcept { return bytes <= cellsz_ && align <= 16; }
  void* do_allocate(std::size_t bytes, std::size_t align) override {
    if (!fits(bytes, align)) return upstream_->allocate(bytes, align);
    void* p = kmpoola(p_);
    if (p == nullptr) detail::bad_alloc();
    return p;
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t align) override {
    if (fits(bytes, align)) kmpoolf(p); else upstream_->deallocate(p, bytes, align);
  }
  bool do_is_equal(const std::pmr::memory_resource& o) const noexcept override { return this == &o; }

  kmpool* p_;
  std::size_t cellsz_;
  std::pmr::memory_resource* upstream_;
};

}  // namespace km

#endif  // KMALLOC_HPP
