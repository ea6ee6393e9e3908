// Secure mode when the kernel refuses a guard page (issue 11): every guard mprotect is checked.
// km::os::inject_failure(Fault::protect, N) makes the Nth next mprotect fail, as the kernel does with
// ENOMEM once a process has vm.max_map_count mappings (each guard splits one). A refused guard fails
// the allocation that needed it with NULL + ENOMEM (never an unguarded block) and prints one line,
// once; a refused unguard (a page going back to its segment) stops the program with a clear message.
// The real limit is tried in secure_test.cpp (SecureHeap.*). Uses the static core (core_dep), run
// with KMALLOC_SECURE=1 KMALLOC_PURGE_THREAD=0 (meson's env).
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <sys/resource.h>
#include <unistd.h>

#include "core/secure.h"
#include "kmalloc.h"
#include "platform/os.h"

namespace {

using km::os::Fault;
using km::os::inject_failure;

km_stats stats() {
  km_stats s;
  km_stats_get(&s);
  return s;
}

size_t count(const std::string& s, const char* what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

constexpr const char* kLine = "secure mode: too many guard pages (vm.max_map_count)";

TEST(SecureGuards, SecureModeIsOn) {
  void* p = km_malloc(1);
  ASSERT_TRUE(km::secure_enabled()) << "run with KMALLOC_SECURE=1";
  km_free(p);
}

// Death tests first: they fork before the message has been printed in this process.
TEST(SecureGuardsDeathTest, ARefusedUnguardStopsTheProgram) {
  EXPECT_DEATH(
      {
        // The thread's exit retires its pages: the guard must become memory again, and cannot.
        std::thread([] {
          km_free(km_malloc(3000));
          inject_failure(Fault::protect, 1);
        }).join();
        std::fprintf(stderr, "not stopped\n");
      },
      "kmalloc\\[[0-9]+\\] [^:]*: secure mode: cannot remove the guard page \\(mprotect failed\\) of the page 0x");
}

TEST(SecureGuards, ARefusedLanePageGuardFailsTheAllocationWithEnomem) {
  km_trim(0);
  km_stats before = stats();
  testing::internal::CaptureStderr();
  // A lane no test used yet (2000-byte requests): its first page needs a guard.
  inject_failure(Fault::protect, 1);
  errno = 0;
  void* p = km_malloc(2000);
  int err = errno;
  inject_failure(Fault::protect, 0);
  // Again, for the message: printed once only.
  inject_failure(Fault::protect, 1);
  void* p2 = km_calloc(1, 2000);
  inject_failure(Fault::protect, 0);
  std::string out = testing::internal::GetCapturedStderr();
  EXPECT_EQ(p, nullptr);
  EXPECT_EQ(err, ENOMEM);
  EXPECT_EQ(p2, nullptr);
  EXPECT_EQ(count(out, kLine), 1u) << out;
  EXPECT_EQ(stats().in_use, before.in_use);
  // The slots went back: the next try gets a page and a guard.
  void* q = km_malloc(2000);
  ASSERT_NE(q, nullptr);
  std::memset(q, 1, 2000);
  km_free(q);
}

TEST(SecureGuards, ARefusedLargeBlockGuardFailsTheAllocationAndUnmapsIt) {
  km_trim(0);   // nothing cached: the block must be mapped, and guarded
  km_stats before = stats();
  testing::internal::CaptureStderr();
  inject_failure(Fault::protect, 1);
  errno = 0;
  void* p = km_malloc(1 << 20);
  int err = errno;
  inject_failure(Fault::protect, 0);
  std::string out = testing::internal::GetCapturedStderr();
  EXPECT_EQ(p, nullptr);
  EXPECT_EQ(err, ENOMEM);
  km_stats after = stats();
  EXPECT_EQ(after.mapped, before.mapped) << "the unguarded block was not unmapped";
  EXPECT_EQ(after.large_in_use, before.large_in_use);
  EXPECT_LE(count(out, kLine), 1u) << out;   // printed at most once per process
  void* q = km_malloc(1 << 20);
  ASSERT_NE(q, nullptr);
  km_free(q);
}

// realloc grows a secure huge block by moving its pages into a mapping guarded first (no copy,
// none left behind): the contents follow, the old mapping is gone, a guard follows the new end.
TEST(SecureGuardsDeathTest, AHugeBlockGrowsUnderANewGuardWithNoCopyLeft) {
  constexpr size_t kOld = size_t(5) << 20, kNew = (size_t(9) << 20) + 100;
  auto* p = static_cast<unsigned char*>(km_malloc(kOld));
  ASSERT_NE(p, nullptr);
  for (size_t i = 0; i < kOld; i += 4096) p[i] = static_cast<unsigned char>(i >> 12);
  km_stats before = stats();
  struct rusage r0, r1;
  getrusage(RUSAGE_SELF, &r0);
  auto* q = static_cast<unsigned char*>(km_realloc(p, kNew));
  getrusage(RUSAGE_SELF, &r1);
  ASSERT_NE(q, nullptr);
  km_stats after = stats();
  // A copy would fault in each of the 1,280 pages it writes; moved pages need no fault.
  EXPECT_LT(r1.ru_minflt - r0.ru_minflt, 256) << "the block was copied";
  for (size_t i = 0; i < kOld; i += 4096) ASSERT_EQ(q[i], static_cast<unsigned char>(i >> 12)) << i;
  size_t usable = km_usable_size(q);
  EXPECT_EQ(usable, km::os::page_round(kNew));
  EXPECT_EQ(after.mapped - before.mapped, km::os::page_round(kNew) - kOld) << "the old pages stayed mapped";
  EXPECT_EQ(after.mmap_count - before.mmap_count, 1u) << "one fresh mapping, then the pages moved";
  EXPECT_DEATH(q[usable] = 1, "");   // the guard page right after the new end
  // Again: a block moved once must move again (its pages and the new guard are two mappings).
  getrusage(RUSAGE_SELF, &r0);
  q = static_cast<unsigned char*>(km_realloc(q, kNew + (size_t(4) << 20)));
  getrusage(RUSAGE_SELF, &r1);
  ASSERT_NE(q, nullptr);
  EXPECT_LT(r1.ru_minflt - r0.ru_minflt, 256) << "the block was copied the second time";
  EXPECT_EQ(q[kOld - 4096], static_cast<unsigned char>((kOld - 4096) >> 12));
  km_free(q);
}

// realloc grows a secure span in place: the new guard goes after the new end before the old one is
// lifted, and the old guard's page becomes part of the block.
TEST(SecureGuardsDeathTest, ASpanGrowsInPlaceUnderANewGuard) {
  constexpr size_t kOld = 200000, kNew = 250000;   // both fit the span's 4 slots with their guard
  auto* p = static_cast<unsigned char*>(km_malloc(kOld));
  ASSERT_NE(p, nullptr);
  std::memset(p, 0x3c, kOld);
  size_t old_usable = km_usable_size(p);
  auto* q = static_cast<unsigned char*>(km_realloc(p, kNew));
  ASSERT_EQ(q, p) << "moved";
  EXPECT_EQ(q[0], 0x3c);
  EXPECT_EQ(q[kOld - 1], 0x3c);
  size_t usable = km_usable_size(q);
  EXPECT_EQ(usable, km::os::page_round(kNew));
  q[old_usable] = 1;                  // the old guard's page is memory now
  EXPECT_DEATH(q[usable] = 1, "");   // the guard right after the new end
  q = static_cast<unsigned char*>(km_realloc(q, 3 * kOld));   // more slots: in place or moved
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q[kOld - 1], 0x3c);
  EXPECT_EQ(q[old_usable], 1);
  km_free(q);
}

// A refused new guard, or a refused lift of the old one, leaves the span as it was: realloc copies.
TEST(SecureGuards, ARefusedGuardWhileASpanGrowsLeavesItAndCopies) {
  for (long nth : {1L, 2L}) {
    auto* p = static_cast<unsigned char*>(km_malloc(200000));
    ASSERT_NE(p, nullptr);
    std::memset(p, 0x2d, 200000);
    testing::internal::CaptureStderr();
    inject_failure(Fault::protect, nth);
    auto* q = static_cast<unsigned char*>(km_realloc(p, 250000));
    inject_failure(Fault::protect, 0);
    testing::internal::GetCapturedStderr();
    ASSERT_NE(q, nullptr) << nth;
    EXPECT_NE(q, p) << nth;
    EXPECT_EQ(q[0], 0x2d);
    EXPECT_EQ(q[199999], 0x2d);
    km_free(q);
  }
}

// A refused guard or a refused move leaves the old block as it was, guarded: realloc copies instead.
TEST(SecureGuards, ARefusedGuardOrMoveWhileAHugeBlockGrowsFallsBackToACopy) {
  for (Fault f : {Fault::protect, Fault::remap}) {
    auto* p = static_cast<unsigned char*>(km_malloc(size_t(5) << 20));
    ASSERT_NE(p, nullptr);
    std::memset(p, 0x5a, size_t(5) << 20);
    testing::internal::CaptureStderr();
    inject_failure(f, 1);
    auto* q = static_cast<unsigned char*>(km_realloc(p, size_t(9) << 20));
    inject_failure(f, 0);
    testing::internal::GetCapturedStderr();
    ASSERT_NE(q, nullptr);
    EXPECT_EQ(q[0], 0x5a);
    EXPECT_EQ(q[(size_t(5) << 20) - 1], 0x5a);
    EXPECT_FALSE(km_owns(p));
    km_free(q);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const char* s = getenv("KMALLOC_SECURE");
  if (!s || std::strcmp(s, "1") != 0) {   // run by hand: the options are read once, at start-up
    setenv("KMALLOC_SECURE", "1", 1);
    setenv("KMALLOC_PURGE_THREAD", "0", 1);
    execv("/proc/self/exe", argv);
    std::perror("execv");
    return 2;
  }
  ::testing::InitGoogleTest(&argc, argv);
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  return RUN_ALL_TESTS();
}
