// The malloc family and C++ new/delete with glibc's semantics, in a binary linked with -lkmalloc:
// every call here goes through kmalloc.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <malloc.h>
#include <new>
#include <sched.h>
#include <set>
#include <thread>
#include <unistd.h>
#include <vector>

#include "kmalloc.h"

// The tests use a block after a realloc that failed (it must be intact): GCC cannot know it failed.
#pragma GCC diagnostic ignored "-Wuse-after-free"

extern "C" void* __libc_malloc(size_t);
extern "C" void __libc_free(void*);
// C23 (glibc 2.43 declares them; Debian 12's headers do not).
extern "C" void free_sized(void*, size_t);
extern "C" void free_aligned_sized(void*, size_t, size_t);

namespace {

// Keep the compiler from folding malloc/free pairs or assuming results.
template <class T> T opaque(T v) {
  __asm__ volatile("" : "+r"(v));
  return v;
}

bool aligned(const void* p, size_t a) { return reinterpret_cast<uintptr_t>(p) % a == 0; }

TEST(Interposition, MallocIsKmalloc) {
  void* p = malloc(opaque(40));
  EXPECT_TRUE(km_owns(p));
  free(p);
  int* q = new int(3);
  EXPECT_TRUE(km_owns(q));
  delete q;
}

TEST(Malloc, EveryResultIsSixteenByteAligned) {
  std::vector<void*> v;
  for (size_t size = 0; size <= 300; ++size) {
    void* p = malloc(opaque(size));
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(aligned(p, 16)) << size;
    v.push_back(p);
  }
  for (void* p : v) free(p);
}

TEST(Malloc, ZeroSizeGivesUniquePointers) {
  void* a = malloc(opaque(0));
  void* b = malloc(opaque(0));
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_NE(a, b);
  free(a);
  free(b);
}

TEST(Malloc, HugeSizesFailWithEnomem) {
  for (size_t size : {SIZE_MAX, SIZE_MAX - 4096, size_t(PTRDIFF_MAX) + 1, size_t(1) << 50}) {
    errno = 0;
    EXPECT_EQ(malloc(opaque(size)), nullptr) << size;
    EXPECT_EQ(errno, ENOMEM) << size;
  }
}

TEST(Malloc, UsableSizeCoversTheRequestAndIsStable) {
  EXPECT_EQ(malloc_usable_size(nullptr), 0u);
  for (size_t size : {1u, 15u, 16u, 17u, 100u, 1000u, 5000u, 70000u, 131072u, 131073u, 3000000u}) {
    auto* p = static_cast<char*>(malloc(opaque(size)));
    size_t u = malloc_usable_size(p);
    EXPECT_GE(u, size);
    std::memset(p, 1, u);   // the whole usable size is ours to write
    EXPECT_EQ(malloc_usable_size(p), u);
    free(p);
  }
}

// A block of size 0 is a block like any other (issue 11: in secure mode its usable size 0 was read as
// "not ours", so these stopped the program with "invalid pointer").
TEST(Malloc, ZeroSizeBlocksCanBeMeasuredReallocatedAndFreed) {
  void* z = malloc(opaque(0));
  ASSERT_NE(z, nullptr);
  EXPECT_TRUE(km_owns(z));
  (void)malloc_usable_size(z);   // 0 in secure mode (exact sizes), a lane's size otherwise
  auto* p = static_cast<unsigned char*>(realloc(z, 10));
  ASSERT_NE(p, nullptr);
  EXPECT_GE(malloc_usable_size(p), 10u);
  std::memset(p, 7, 10);
  p = static_cast<unsigned char*>(realloc(p, 3000));
  ASSERT_NE(p, nullptr);
  for (int i = 0; i < 10; ++i) ASSERT_EQ(p[i], 7);
  free(p);

  void* c = calloc(0, 5);
  ASSERT_NE(c, nullptr);
  (void)malloc_usable_size(c);
  c = realloc(c, 100);
  ASSERT_NE(c, nullptr);
  EXPECT_GE(malloc_usable_size(c), 100u);
  free(c);

  for (size_t align : {size_t(16), size_t(64), size_t(4096), size_t(1) << 16}) {
    void* a = nullptr;
    ASSERT_EQ(posix_memalign(&a, align, 0), 0);
    EXPECT_TRUE(aligned(a, align));
    (void)malloc_usable_size(a);
    void* b = realloc(a, 200);
    ASSERT_NE(b, nullptr) << align;
    EXPECT_GE(malloc_usable_size(b), 200u);
    free(b);
    void* m = memalign(align, 0);
    ASSERT_NE(m, nullptr);
    m = realloc(m, 1);
    ASSERT_NE(m, nullptr);
    free(m);
  }
  free(malloc(opaque(0)));
}

TEST(Free, PreservesErrnoAndAcceptsNull) {
  void* p = malloc(opaque(5000000));   // a large block: free unmaps or caches it
  errno = 1234;
  free(p);
  free(nullptr);
  EXPECT_EQ(errno, 1234);
}

TEST(Calloc, ZeroesTheWholeUsableSizeEvenForRecycledCells) {
  for (size_t size : {16u, 100u, 4000u, 100000u, 2000000u}) {
    auto* dirty = static_cast<unsigned char*>(malloc(opaque(size)));
    std::memset(dirty, 0xEE, malloc_usable_size(dirty));
    free(dirty);
    auto* p = static_cast<unsigned char*>(calloc(1, size));
    ASSERT_NE(p, nullptr);
    size_t u = malloc_usable_size(p);
    for (size_t i = 0; i < u; ++i) ASSERT_EQ(p[i], 0) << "size " << size << " byte " << i;
    free(p);
  }
}

TEST(Calloc, MultiplicationOverflowFails) {
  errno = 0;
  EXPECT_EQ(calloc(opaque(SIZE_MAX / 2), 3), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(calloc(opaque(size_t(1) << 33), size_t(1) << 33), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  void* p = calloc(0, 0);
  EXPECT_NE(p, nullptr);
  free(p);
}

TEST(Realloc, KeepsContentsAcrossLanesAndIntoLargeBlocks) {
  auto* p = static_cast<unsigned char*>(malloc(opaque(1)));
  p[0] = 42;
  size_t size = 1;
  for (size_t next = 2; next <= (size_t(8) << 20); next = next * 3 / 2 + 1) {
    p = static_cast<unsigned char*>(realloc(p, next));
    ASSERT_NE(p, nullptr);
    for (size_t i = 1; i < size; ++i) ASSERT_EQ(p[i], static_cast<unsigned char>(i * 13)) << next;
    for (size_t i = size; i < next; ++i) p[i] = static_cast<unsigned char>(i * 13);
    ASSERT_EQ(p[0], 42);
    size = next;
  }
  free(p);
}

TEST(Realloc, StaysInPlaceWhenTheNewSizeFits) {
  void* p = malloc(opaque(100));
  size_t u = malloc_usable_size(p);
  EXPECT_EQ(realloc(p, u), p);
  EXPECT_EQ(realloc(p, 90), p);
  free(p);
}

TEST(Realloc, NullIsMallocAndZeroFrees) {
  void* p = realloc(nullptr, 10);
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(km_owns(p));
  EXPECT_EQ(realloc(p, 0), nullptr);   // glibc: frees and returns NULL
  EXPECT_FALSE(km_owns(p));
}

TEST(Realloc, FailureLeavesTheBlockIntact) {
  for (size_t size : {64u, 200000u}) {
    auto* p = static_cast<char*>(malloc(size));
    std::memset(p, 'x', size);
    errno = 0;
    EXPECT_EQ(realloc(p, opaque(SIZE_MAX - 10)), nullptr);
    EXPECT_EQ(errno, ENOMEM);
    EXPECT_TRUE(km_owns(p));
    for (size_t i = 0; i < size; ++i) ASSERT_EQ(p[i], 'x');
    free(p);
  }
}

TEST(Reallocarray, CatchesOverflowAndLeavesTheBlock) {
  void* p = malloc(16);
  errno = 0;
  void* failed = reallocarray(p, opaque(SIZE_MAX / 4), 8);
  EXPECT_EQ(failed, nullptr);
  EXPECT_EQ(errno, ENOMEM);
  void* q = reallocarray(opaque(p), 10, 10);   // p is intact after the failed call
  ASSERT_NE(q, nullptr);
  EXPECT_GE(malloc_usable_size(q), 100u);
  free(q);
}

TEST(Aligned, PosixMemalignEveryPowerOfTwoUpTo8MiB) {
  for (size_t align = sizeof(void*); align <= (size_t(8) << 20); align *= 2) {
    for (size_t size : {size_t(0), size_t(1), align / 2 + 1, align, 3 * align + 5}) {
      void* p = reinterpret_cast<void*>(0x1);
      ASSERT_EQ(posix_memalign(&p, align, size), 0) << align << " " << size;
      EXPECT_TRUE(aligned(p, align)) << align << " " << size;
      EXPECT_GE(malloc_usable_size(p), size);
      std::memset(p, 3, size);
      free(p);
    }
  }
}

TEST(Aligned, PosixMemalignRejectsBadAlignmentsAndLeavesTheResultAlone) {
  void* p = reinterpret_cast<void*>(0x1234);
  EXPECT_EQ(posix_memalign(&p, 0, 16), EINVAL);
  EXPECT_EQ(posix_memalign(&p, 4, 16), EINVAL);    // below sizeof(void*)
  EXPECT_EQ(posix_memalign(&p, 24, 16), EINVAL);   // not a power of two
  EXPECT_EQ(p, reinterpret_cast<void*>(0x1234));
  EXPECT_EQ(posix_memalign(&p, 64, opaque(SIZE_MAX - 100)), ENOMEM);
  EXPECT_EQ(p, reinterpret_cast<void*>(0x1234));
}

TEST(Aligned, AlignedAllocRules) {
  errno = 0;
  EXPECT_EQ(aligned_alloc(opaque(0), 16), nullptr);
  EXPECT_EQ(errno, EINVAL);
  errno = 0;
  EXPECT_EQ(aligned_alloc(opaque(48), 96), nullptr);   // glibc 2.38: not a power of two
  EXPECT_EQ(errno, EINVAL);
  void* p = aligned_alloc(256, 10);   // a size that is not a multiple is allowed
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(aligned(p, 256));
  free(p);
  errno = 0;
  EXPECT_EQ(aligned_alloc(opaque(SIZE_MAX / 2 + 1), 16), nullptr);
  EXPECT_EQ(errno, ENOMEM);
}

TEST(Aligned, MemalignRoundsOddAlignmentsUp) {
  void* p = memalign(opaque(48), 10);
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(aligned(p, 64));
  free(p);
  void* q = memalign(opaque(1), 10);
  ASSERT_NE(q, nullptr);
  EXPECT_TRUE(aligned(q, 16));
  free(q);
  errno = 0;
  EXPECT_EQ(memalign(opaque(SIZE_MAX), 10), nullptr);
  EXPECT_EQ(errno, EINVAL);
}

TEST(Aligned, VallocAndPvallocArePageAligned) {
  long page = sysconf(_SC_PAGESIZE);
  void* v = valloc(10);
  ASSERT_NE(v, nullptr);
  EXPECT_TRUE(aligned(v, page));
  void* pv = pvalloc(10);
  ASSERT_NE(pv, nullptr);
  EXPECT_TRUE(aligned(pv, page));
  EXPECT_GE(malloc_usable_size(pv), size_t(page));   // rounded up to whole pages
  free(v);
  free(pv);
  errno = 0;
  EXPECT_EQ(valloc(opaque(size_t(-page))), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(pvalloc(opaque(SIZE_MAX - 10)), nullptr);
  EXPECT_EQ(errno, ENOMEM);
}

TEST(Glibc, InternalNamesAndTuningCallsWork) {
  void* p = __libc_malloc(opaque(33));
  EXPECT_TRUE(km_owns(p));
  __libc_free(p);
  EXPECT_NE(mallopt(M_ARENA_MAX, 2), 0);
  struct mallinfo2 mi = mallinfo2();
  EXPECT_GT(mi.uordblks, 0u);
  // malloc_trim returns 1 when it gave memory back: a freed large block waits in the cache until
  // the purge delay, and trim unmaps it now; right after, there is nothing left to give.
  malloc_trim(0);
  free(malloc(opaque(size_t(8) << 20)));   // a huge block (above the largest span)
  km_stats st;
  km_stats_get(&st);
  if (getenv("KMALLOC_SECURE") && atoi(getenv("KMALLOC_SECURE")) == 1) {
    // Secure mode never reuses a huge mapping (it is unmapped on free): trim still purges the
    // freed lane pages and spare segments.
    EXPECT_EQ(st.large_cached, 0u);
    return;
  }
  ASSERT_GT(st.large_cached, 0u) << "the freed block was not cached (KMALLOC_PURGE_DELAY_MS=0?)";
  EXPECT_EQ(malloc_trim(0), 1);
  km_stats_get(&st);
  EXPECT_EQ(st.large_cached, 0u);
  EXPECT_EQ(malloc_trim(0), 0);
}

// mallinfo2 reads the same counters as km_stats_get, without its walks that ask the OS (a program
// may poll it): in use is exact, huge blocks show in hblkhd.
TEST(Glibc, MallinfoCountsWhatTheProgramHolds) {
  std::vector<void*> cells;
  cells.reserve(1000);   // before the first count: the vector's own block stays
  struct mallinfo2 before = mallinfo2();
  for (int i = 0; i < 1000; ++i) cells.push_back(malloc(opaque(48)));
  void* huge = malloc(opaque(size_t(8) << 20));
  struct mallinfo2 during = mallinfo2();
  km_stats st;
  km_stats_get(&st);
  EXPECT_EQ(during.uordblks, st.in_use);
  EXPECT_GE(during.uordblks, before.uordblks + 1000 * 48 + (size_t(8) << 20));
  EXPECT_GE(during.hblkhd, size_t(8) << 20);
  EXPECT_EQ(during.hblks, st.huge_count);
  EXPECT_GE(during.usmblks, during.uordblks);
  EXPECT_EQ(during.arena + during.hblkhd, st.mapped);
  for (void* p : cells) free(p);
  free(huge);
  EXPECT_EQ(mallinfo2().uordblks, before.uordblks);
}

// ---- C23 free_sized / free_aligned_sized

bool secure_mode() {
  const char* s = getenv("KMALLOC_SECURE");
  return s && std::strcmp(s, "1") == 0;
}

TEST(FreeSized, FreesLikeFreeWithTheRightSize) {
  free_sized(nullptr, 0);
  free_aligned_sized(nullptr, 64, 0);
  km_stats before, after;
  km_stats_get(&before);
  for (size_t n : {size_t(0), size_t(1), size_t(100), size_t(1000), size_t(131072), size_t(200000),
                   size_t(3) << 20}) {
    void* p = malloc(opaque(n));
    ASSERT_NE(p, nullptr);
    free_sized(p, n);
    EXPECT_FALSE(km_owns(p)) << n;
    void* c = calloc(opaque(n), 3);
    free_sized(c, n * 3);
    EXPECT_FALSE(km_owns(c)) << n;
    for (size_t a : {size_t(16), size_t(64), size_t(4096), size_t(1) << 16}) {
      void* q = aligned_alloc(a, opaque(n));
      ASSERT_NE(q, nullptr);
      free_aligned_sized(q, a, n);
      EXPECT_FALSE(km_owns(q)) << n << " " << a;
    }
  }
  // After realloc the size is the new one (in place or moved).
  void* r = malloc(opaque(size_t(100)));
  r = realloc(r, 90);
  free_sized(r, 90);
  r = malloc(opaque(size_t(300000)));
  r = realloc(r, 200000);   // a large block kept in place
  free_sized(r, 200000);
  r = malloc(opaque(size_t(8) << 20));
  r = realloc(r, size_t(5) << 20);   // a huge block kept in place (secure mode: moved, smaller)
  free_sized(r, size_t(5) << 20);
  km_stats_get(&after);
  EXPECT_EQ(after.in_use, before.in_use);
}

// A large block that grows a little at a time (a string appended to byte by byte) stays in place
// while it fits its pages, in secure mode too (whose usable size is exact to the page): moving it on
// every call made such a loop quadratic (a 1 MB string: 31 s).
TEST(Realloc, ALargeBlockGrowingByteByByteMovesOncePerPageAtMost) {
  size_t n = 200000;
  char* p = static_cast<char*>(malloc(opaque(n)));
  ASSERT_NE(p, nullptr);
  std::memset(p, 7, n);
  unsigned moves = 0;
  for (; n < 300000; ++n) {
    char* q = static_cast<char*>(realloc(p, n + 1));
    ASSERT_NE(q, nullptr);
    if (q != p) ++moves;
    p = q;
    p[n] = 7;
  }
  EXPECT_LE(moves, 100000u / 4096 + 2);
  EXPECT_EQ(p[0], 7);
  EXPECT_EQ(p[n - 1], 7);
  free_sized(p, n);
}

TEST(FreeSized, AWrongSizeIsHarmlessOutsideSecureMode) {
  if (secure_mode()) GTEST_SKIP() << "secure mode checks the size (FreeSizedDeathTest)";
  void* p = malloc(opaque(size_t(1000)));
  free_sized(p, 8);
  EXPECT_FALSE(km_owns(p));
  void* q = aligned_alloc(64, opaque(size_t(64)));
  free_aligned_sized(q, 4096, 1);
  EXPECT_FALSE(km_owns(q));
}

TEST(FreeSizedDeathTest, SecureModeStopsOnASizeMismatch) {
  if (!secure_mode()) GTEST_SKIP() << "only KMALLOC_SECURE=1 checks the size";
  const char* msg = "kmalloc\\[[0-9]+\\] [^:]*: free_sized\\(\\): size mismatch 0x[0-9a-f]+";
  EXPECT_DEATH(free_sized(malloc(opaque(size_t(100))), 8), msg);      // too small
  EXPECT_DEATH(free_sized(malloc(opaque(size_t(100))), 101), msg);    // too big
  EXPECT_DEATH(free_sized(malloc(opaque(size_t(0))), 1), msg);
  EXPECT_DEATH(free_sized(calloc(opaque(size_t(10)), 10), 10), msg);
  EXPECT_DEATH(free_sized(malloc(opaque(size_t(1) << 20)), 1000), msg);             // large block
  EXPECT_DEATH(free_sized(malloc(opaque(size_t(1) << 20)), (size_t(1) << 20) + 4097), msg);
  EXPECT_DEATH(free_aligned_sized(aligned_alloc(256, opaque(size_t(300))), 256, 30),
               "kmalloc\\[[0-9]+\\] [^:]*: free_aligned_sized\\(\\): size mismatch 0x");
  EXPECT_DEATH(
      {
        // A block that is 64-aligned but not 4096-aligned, freed as if from aligned_alloc(4096, .).
        void* p = aligned_alloc(64, 64);
        while (reinterpret_cast<uintptr_t>(p) % 4096 == 0) p = aligned_alloc(64, 64);
        free_aligned_sized(p, 4096, 64);
      },
      "kmalloc\\[[0-9]+\\] [^:]*: free_aligned_sized\\(\\): alignment mismatch 0x");
  // Still a free: misuse is caught as for free.
  EXPECT_DEATH(
      {
        void* p = malloc(opaque(size_t(64)));
        free_sized(p, 64);
        free_sized(p, 64);
      },
      "double free|invalid pointer");
}

// ---- C++

TEST(Cxx, EveryNewFormIsServedAndAligned) {
  auto* a = new char[opaque(100)];
  EXPECT_TRUE(km_owns(a));
  delete[] a;
  struct alignas(256) Big { char c[300]; };
  auto* b = new Big;
  EXPECT_TRUE(aligned(b, 256));
  EXPECT_TRUE(km_owns(b));
  delete b;
  auto* c = new (std::nothrow) Big[3];
  EXPECT_TRUE(aligned(c, 256));
  delete[] c;
  void* d = ::operator new(opaque(size_t(50)), std::align_val_t(4096));
  EXPECT_TRUE(aligned(d, 4096));
  ::operator delete(d, 50, std::align_val_t(4096));
}

TEST(Cxx, SizedDeleteWithAWrongSizeIsHarmless) {
  km_stats before, after;
  km_stats_get(&before);
  auto* p = static_cast<char*>(::operator new(opaque(size_t(1000))));
  size_t usable = malloc_usable_size(p);
  ::operator delete(p, size_t(8));   // programs get this wrong; metadata decides
  EXPECT_FALSE(km_owns(p)) << "the block was not freed";
  km_stats_get(&after);
  EXPECT_EQ(after.in_use, before.in_use) << "freed as the wrong size";
  // Had the size been trusted, the 1000-byte cell would now sit in the 8-byte lane: small blocks
  // would be carved out of it.
  std::vector<char*> tiny;
  for (int i = 0; i < 200; ++i) tiny.push_back(static_cast<char*>(malloc(opaque(size_t(8)))));
  for (char* t : tiny) EXPECT_FALSE(t >= p && t < p + 1000) << "an 8-byte block inside the freed cell";
  for (char* t : tiny) free(t);
  // And the 1000-byte lane still works with the right size.
  auto* q = static_cast<char*>(::operator new(opaque(size_t(1000))));
  EXPECT_EQ(malloc_usable_size(q), usable);
  std::memset(q, 1, 1000);
  ::operator delete(q, size_t(1000));
  EXPECT_FALSE(km_owns(q));
}

TEST(Cxx, NewThrowsBadAllocAndNothrowReturnsNull) {
  EXPECT_THROW((void)::operator new(opaque(SIZE_MAX - 4096)), std::bad_alloc);
  EXPECT_THROW((void)::operator new(opaque(SIZE_MAX / 2), std::align_val_t(1 << 20)), std::bad_alloc);
  EXPECT_EQ(::operator new(opaque(SIZE_MAX - 4096), std::nothrow), nullptr);
}

int g_handler_calls = 0;
TEST(Cxx, NewCallsTheNewHandlerUntilItGivesUp) {
  g_handler_calls = 0;
  std::set_new_handler([] {
    if (++g_handler_calls == 3) std::set_new_handler(nullptr);
  });
  EXPECT_THROW((void)::operator new(opaque(SIZE_MAX - 4096)), std::bad_alloc);
  EXPECT_EQ(g_handler_calls, 3);
}

// ---- misuse stops the program with a one-line message naming the pointer

TEST(MisuseDeathTest, DoubleFreeOfASmallBlock) {
  EXPECT_DEATH(
      {
        void* p = malloc(opaque(64));
        free(p);
        free(p);
      },
      "kmalloc\\[[0-9]+\\] [^:]*: free\\(\\): double free 0x[0-9a-f]+");
}

TEST(MisuseDeathTest, DoubleFreeFromAnotherPositionInTheFreeList) {
  EXPECT_DEATH(
      {
        void* p = malloc(opaque(64));
        void* q = malloc(opaque(64));
        free(p);
        free(q);
        free(p);
      },
      "double free");
}

// Another (live, idle) thread's block freed twice: the first free tags it free before handing it
// over (or keeping it for this thread's next malloc), so the second is caught. A cell and a span; in
// api-secure, the keyed tag, which only the slow path that every secure free takes compares.
void double_free_of_another_threads_block(size_t size) {
  std::atomic<void*> p{nullptr};
  std::atomic<bool> done{false};
  std::thread owner([&] {
    p = malloc(opaque(size));
    while (!done) sched_yield();
  });
  while (!p) sched_yield();
  free(p);
  free(p);
  done = true;
  owner.join();
}

TEST(MisuseDeathTest, DoubleFreeOfAnotherThreadsBlock) {
  EXPECT_DEATH(double_free_of_another_threads_block(64), "free\\(\\): double free 0x");
  EXPECT_DEATH(double_free_of_another_threads_block(1 << 20), "free\\(\\): double free 0x");
}

TEST(MisuseDeathTest, InteriorPointer) {
  EXPECT_DEATH(
      {
        char* p = static_cast<char*>(malloc(opaque(64)));
        free(p + 16);
      },
      "kmalloc\\[[0-9]+\\] [^:]*: free\\(\\): invalid pointer \\(not the start of a block\\) 0x");
}

TEST(MisuseDeathTest, PointerKmallocNeverGaveOut) {
  EXPECT_DEATH(
      {
        static char not_heap[64];
        free(opaque(not_heap + 0));
      },
      "kmalloc\\[[0-9]+\\] [^:]*: free\\(\\): invalid pointer 0x");
  EXPECT_DEATH(
      {
        int on_stack = 0;
        free(opaque(&on_stack));
      },
      "invalid pointer");
}

// Pointers at or above 2^47 (not user addresses under 4-level paging: a corrupted pointer) whose
// bits 22-46 name no segment of ours: free's fast path masks the map index, so they meet the map
// entry of a low address, never ours, and the slow path names them. A map read out of bounds would
// crash instead (README, "Known limits", for the rare alias that lands on a segment).
TEST(MisuseDeathTest, PointerAboveTheUserAddressSpace) {
  for (uintptr_t bad : {uintptr_t(1) << 47, (uintptr_t(1) << 47) + 4096, ~uintptr_t(0) << 47,
                        ~uintptr_t(0) - 4095})
    EXPECT_DEATH(free(opaque(reinterpret_cast<void*>(bad))),
                 "kmalloc\\[[0-9]+\\] [^:]*: free\\(\\): invalid pointer 0x") << bad;
}

TEST(MisuseDeathTest, PointerIntoAnUnusedPartOfASegment) {
  EXPECT_DEATH(
      {
        char* p = static_cast<char*>(malloc(opaque(16)));
        // The last 64 KiB slot of p's 4 MiB segment: no page there in a fresh process.
        uintptr_t seg = reinterpret_cast<uintptr_t>(p) & ~((uintptr_t(1) << 22) - 1);
        free(opaque(reinterpret_cast<char*>(seg + (uintptr_t(63) << 16) + 64)));
      },
      "kmalloc\\[[0-9]+\\] [^:]*: free\\(\\): invalid pointer 0x");
}

// A span's second free meets its free tag ("double free"), a cached huge block's its header; in
// secure mode a huge block is unmapped at once, and its second free is an "invalid pointer".
TEST(MisuseDeathTest, DoubleFreeOfALargeBlock) {
  EXPECT_DEATH(
      {
        void* p = malloc(opaque(1 << 22));
        free(p);
        free(p);
      },
      "kmalloc\\[[0-9]+\\] [^:]*: free\\(\\): (double free|invalid pointer) 0x");
}

TEST(MisuseDeathTest, ReallocOfAForeignPointer) {
  EXPECT_DEATH(
      {
        static char not_heap[64];
        (void)!realloc(opaque(not_heap + 0), 100);
      },
      "kmalloc\\[[0-9]+\\] [^:]*: realloc\\(\\): invalid pointer 0x");
}

}  // namespace
