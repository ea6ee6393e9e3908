// Injected kernel failures: km::os::inject_failure makes the Nth next map/purge/remap fail. Every
// path that needs the kernel (a lane refill that maps a new segment, a large block, the large-block
// registry growing, realloc of a large block via mremap, purge by km_trim or at once) must return
// NULL with ENOMEM (or degrade to "not purged yet") and lose nothing: blocks already handed out keep
// their contents, and km_stats_get's in_use / large_in_use / mapped come back to where they were.
//
// Run with KMALLOC_PURGE_THREAD=0 (meson's env for this test): no background purger consumes an
// injected purge failure meant for km_trim. Uses the core through km_* only (core_dep), so it also
// runs under the sanitizer builds of scripts/sanitize.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <algorithm>
#include <cstring>
#include <thread>
#include <vector>

#include "core/options.h"
#include "core/size_class.h"
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

// A block with a recognisable fill: byte i of block `seed` is (seed * 131 + i * 7) & 0xff.
struct Held {
  unsigned char* p;
  size_t size;
  unsigned seed;
};
void fill(const Held& h) {
  for (size_t i = 0; i < h.size; ++i) h.p[i] = static_cast<unsigned char>(h.seed * 131 + i * 7);
}
bool intact(const Held& h) {
  for (size_t i = 0; i < h.size; ++i)
    if (h.p[i] != static_cast<unsigned char>(h.seed * 131 + i * 7)) return false;
  return true;
}

void disarm() {
  inject_failure(Fault::map, 0);
  inject_failure(Fault::purge, 0);
  inject_failure(Fault::remap, 0);
}

// Every test starts from a trimmed allocator (no cached large blocks, nothing dirty) and checks that
// the bytes in use come back exactly after it freed everything.
class Faults : public ::testing::Test {
 protected:
  void SetUp() override {
    disarm();
    km_trim(0);
    base_ = stats();
  }
  void TearDown() override {
    disarm();
    km_trim(0);
    km_stats now = stats();
    EXPECT_EQ(now.in_use, base_.in_use) << "bytes leaked";
    EXPECT_EQ(now.large_in_use, base_.large_in_use) << "large bytes leaked";
    EXPECT_EQ(now.large_cached, 0u);
    // After a trim a heap keeps one spare empty segment and the current (empty) page of each lane
    // it used (spans share segments with lane pages, so those pages may sit in a few segments), and
    // the metadata chunk may have been mapped: allow that much slack, no more.
    EXPECT_LE(now.mapped, base_.mapped + 6 * km::kSegmentSize + (1 << 20)) << "mappings leaked";
  }
  km_stats base_{};
};

TEST_F(Faults, LaneRefillThatNeedsANewSegmentFailsWithEnomemAndRecovers) {
  // 96 KiB cells: 16-slot pages, 3 pages per segment, so a new segment is needed every few pages.
  const size_t size = 96 << 10;
  std::vector<Held> held;
  int failures = 0;
  for (unsigned i = 0; i < 400 && failures < 5; ++i) {
    km_stats before = stats();
    inject_failure(Fault::map, 1);
    errno = 0;
    void* p = km_malloc(size);
    if (!p) {
      ++failures;
      EXPECT_EQ(errno, ENOMEM);
      km_stats after = stats();
      EXPECT_EQ(after.in_use, before.in_use);
      EXPECT_EQ(after.mapped, before.mapped);
      EXPECT_EQ(after.mmap_count, before.mmap_count);
      inject_failure(Fault::map, 0);
      p = km_malloc(size);   // the same request works once the kernel does
      ASSERT_NE(p, nullptr);
    }
    held.push_back({static_cast<unsigned char*>(p), size, i});
    fill(held.back());
  }
  disarm();
  EXPECT_GE(failures, 5) << "no allocation needed a new segment";
  for (auto& h : held) {
    EXPECT_TRUE(intact(h));
    km_free(h.p);
  }
}

TEST_F(Faults, EveryAllocationFunctionFailsCleanlyWhenTheSegmentCannotBeMapped) {
  // A fresh thread has no heap and no segment of its own (or adopts a pooled one): its first calls
  // either succeed or fail with ENOMEM, and a retry without the fault succeeds.
  std::thread([] {
    struct Call {
      const char* name;
      void* (*fn)();
    };
    const Call calls[] = {
        {"malloc", [] { return km_malloc(40000); }},
        {"calloc", [] { return km_calloc(10, 4000); }},
        {"realloc(NULL)", [] { return km_realloc(nullptr, 40000); }},
        {"aligned_alloc", [] { return km_aligned_alloc(4096, 40000); }},
        {"memalign", [] { return km_memalign(1024, 40000); }},
        {"valloc", [] { return km_valloc(40000); }},
        {"pvalloc", [] { return km_pvalloc(40000); }},
        {"posix_memalign", [] {
           void* out = reinterpret_cast<void*>(0x1234);
           int rc = km_posix_memalign(&out, 2048, 40000);
           if (rc == ENOMEM) {
             EXPECT_EQ(out, reinterpret_cast<void*>(0x1234)) << "*memptr touched on failure";
             errno = ENOMEM;
             return static_cast<void*>(nullptr);
           }
           EXPECT_EQ(rc, 0);
           return out;
         }},
    };
    std::vector<void*> keep;
    for (const Call& c : calls) {
      // Fail every map for this call until it either fails or needs none.
      for (int round = 0; round < 200; ++round) {
        inject_failure(Fault::map, 1);
        errno = 0;
        void* p = c.fn();
        inject_failure(Fault::map, 0);
        if (p) {
          keep.push_back(p);
          continue;
        }
        EXPECT_EQ(errno, ENOMEM) << c.name;
        p = c.fn();
        EXPECT_NE(p, nullptr) << c.name << " after the fault";
        if (p) keep.push_back(p);
        break;
      }
    }
    for (void* p : keep) km_free(p);
    km_trim(0);
  }).join();
}

TEST_F(Faults, LargeBlocksFailWithEnomemForEveryFunction) {
  Held keep{static_cast<unsigned char*>(km_malloc(300000)), 300000, 7};
  ASSERT_NE(keep.p, nullptr);
  fill(keep);
  km_trim(0);   // nothing cached: every huge request must map
  km_stats before = stats();
  const size_t big = 8 << 20;   // above the largest span: a huge block, a mapping of its own
  auto check = [&](const char* name, void* p, int err) {
    EXPECT_EQ(p, nullptr) << name;
    EXPECT_EQ(err, ENOMEM) << name;
    km_stats now = stats();
    EXPECT_EQ(now.large_in_use, before.large_in_use) << name;
    EXPECT_EQ(now.mapped, before.mapped) << name;
    EXPECT_EQ(now.mmap_count, before.mmap_count) << name;
  };
  // Each call may map at most once (map_aligned maps once and unmaps the excess).
#define KM_FAIL_ONCE(name, call)      \
  do {                                \
    inject_failure(Fault::map, 1);    \
    errno = 0;                        \
    void* r_ = (call);                \
    int e_ = errno;                   \
    check(name, r_, e_);              \
  } while (0)
  KM_FAIL_ONCE("malloc", km_malloc(big));
  KM_FAIL_ONCE("calloc", km_calloc(1, big));
  KM_FAIL_ONCE("realloc(NULL)", km_realloc(nullptr, big));
  KM_FAIL_ONCE("aligned_alloc 1 MiB", km_aligned_alloc(1 << 20, big));
  KM_FAIL_ONCE("memalign 128 KiB", km_memalign(1 << 17, 4096));   // above a slot: huge
  KM_FAIL_ONCE("valloc", km_valloc(big));
  KM_FAIL_ONCE("pvalloc", km_pvalloc(big));
  void* out = &keep;
  inject_failure(Fault::map, 1);
  int rc = km_posix_memalign(&out, 1 << 21, 100);
  check("posix_memalign 2 MiB", rc == 0 ? out : nullptr, rc);
  EXPECT_EQ(out, static_cast<void*>(&keep)) << "posix_memalign touched *memptr on failure";
  // realloc of a small cell into a large block: the cell stays.
  Held small{static_cast<unsigned char*>(km_malloc(1000)), 1000, 9};
  fill(small);
  size_t small_usable = km_usable_size(small.p);
  before = stats();
  KM_FAIL_ONCE("realloc small->large", km_realloc(small.p, big));
#undef KM_FAIL_ONCE
  EXPECT_TRUE(intact(small));
  EXPECT_TRUE(km_owns(small.p)) << "the failed realloc freed the cell";
  EXPECT_EQ(km_usable_size(small.p), small_usable) << "the failed realloc resized the cell";
  disarm();
  EXPECT_TRUE(intact(keep));
  void* p = km_malloc(big);
  EXPECT_NE(p, nullptr);
  km_free(p);
  km_free(small.p);
  km_free(keep.p);
}

TEST_F(Faults, ReallocOfAHugeBlockKeepsItWhenMremapFails) {
  Held h{static_cast<unsigned char*>(km_malloc(8 << 20)), 8 << 20, 3};
  ASSERT_NE(h.p, nullptr);
  fill(h);
  // Growing in place fails (remap) and so does the reservation to move into (map): the block is
  // copied into a new one, or the call fails with the block intact. Never half of each.
  inject_failure(Fault::remap, 1);
  inject_failure(Fault::map, 1);
  errno = 0;
  void* q = km_realloc(h.p, 32 << 20);
  disarm();
  if (q) {
    h.p = static_cast<unsigned char*>(q);
    EXPECT_GE(km_usable_size(q), size_t(32) << 20);
  } else {
    EXPECT_EQ(errno, ENOMEM);
  }
  EXPECT_TRUE(km_owns(h.p));
  EXPECT_TRUE(intact(h));
  // Only the move fails: the block is copied, contents kept, the old address forgotten.
  unsigned char* old = h.p;
  inject_failure(Fault::remap, 2);   // in place fails (no: 1st), the move (2nd) fails
  q = km_realloc(h.p, 64 << 20);
  disarm();
  ASSERT_NE(q, nullptr);
  h.p = static_cast<unsigned char*>(q);
  EXPECT_TRUE(intact(h));
  if (q != old) {
    EXPECT_FALSE(km_owns(old));
  }
  // Shrinking keeps the block where it is, whether or not mremap may shrink it.
  inject_failure(Fault::remap, 1);
  q = km_realloc(h.p, 5 << 20);
  disarm();
  ASSERT_EQ(q, h.p);
  h.size = 5 << 20;
  EXPECT_TRUE(intact(h));
  km_free(h.p);
}

TEST_F(Faults, NthFailureSweepOverAMixedWorkloadLosesNothing) {
  // For N = 1..24, the Nth kernel call of a fixed workload fails (map, then remap). Every failing
  // call returns NULL + ENOMEM; every block handed out keeps its contents; all is freed after.
  const size_t sizes[] = {24, 1000, 5000, 70000, 131072, 200000, 600000, 1 << 20};
  for (Fault f : {Fault::map, Fault::remap}) {
    for (long n = 1; n <= 24; ++n) {
      std::vector<Held> held;
      int failed = 0;
      inject_failure(f, n);
      for (unsigned i = 0; i < 60; ++i) {
        size_t size = sizes[i % 8] + i;
        errno = 0;
        void* p = nullptr;
        switch (i % 5) {
          case 0: p = km_malloc(size); break;
          case 1: p = km_calloc(1, size); break;
          case 2: p = km_aligned_alloc(size_t(64) << (i % 16), size); break;
          case 3:
            if (!held.empty()) {   // grow the last block (mremap for large ones)
              Held& last = held.back();
              size_t grown = last.size < (4u << 20) ? last.size * 2 + 1 : last.size / 3;
              p = km_realloc(last.p, grown);
              if (p) {
                last.p = static_cast<unsigned char*>(p);
                last.size = std::min(last.size, grown);
                EXPECT_TRUE(intact(last));
                last.size = grown;
                fill(last);
                continue;
              }
              EXPECT_TRUE(intact(last)) << "realloc failure damaged the block";
            } else {
              p = km_malloc(size);
            }
            break;
          default: p = km_valloc(size); break;
        }
        if (!p) {
          ++failed;
          EXPECT_EQ(errno, ENOMEM) << "call " << i;
          continue;
        }
        held.push_back({static_cast<unsigned char*>(p), size, i});
        fill(held.back());
      }
      inject_failure(f, 0);
      EXPECT_LE(failed, 1) << "one injected failure made more than one call fail";
      for (auto& h : held) {
        EXPECT_TRUE(intact(h)) << "block of " << h.size << " bytes damaged (fault " << int(f)
                               << ", n " << n << ")";
        km_free(h.p);
      }
      km_trim(0);
      EXPECT_EQ(stats().in_use, base_.in_use) << "fault " << int(f) << ", n " << n;
      EXPECT_EQ(stats().large_in_use, base_.large_in_use);
    }
  }
}

TEST_F(Faults, TrimWhosePurgeFailsKeepsThePagesDirtyAndPurgesThemNextTime) {
  // Fill then free a few pages, keep one cell of each lane alive so the heap has content to check.
  std::vector<Held> live;
  std::vector<void*> dead;
  for (unsigned i = 0; i < 2000; ++i) {
    void* p = km_malloc(3000);
    ASSERT_NE(p, nullptr);
    if (i % 500 == 0) {
      live.push_back({static_cast<unsigned char*>(p), 3000, i});
      fill(live.back());
    } else {
      dead.push_back(p);
    }
  }
  for (void* p : dead) km_free(p);
  km_stats before = stats();
  inject_failure(Fault::purge, 1);   // the first purge of the trim fails
  km_trim(0);
  km_stats mid = stats();
  EXPECT_EQ(mid.in_use, before.in_use);
  for (auto& h : live) EXPECT_TRUE(intact(h));
  // The failed range stays dirty: a later trim purges it.
  inject_failure(Fault::purge, 0);
  size_t purged_before = stats().purged;
  km_trim(0);
  km_stats after = stats();
  EXPECT_EQ(after.in_use, before.in_use);
  EXPECT_GT(after.purged + after.munmap_count, purged_before + mid.munmap_count)
      << "nothing was purged after the failure";
  // Every purge failing: trim still returns, nothing is lost.
  inject_failure(Fault::purge, 1);
  for (int i = 0; i < 10; ++i) {
    std::vector<void*> more;
    for (int j = 0; j < 300; ++j) more.push_back(km_malloc(3000));
    for (void* p : more) km_free(p);
    inject_failure(Fault::purge, 1);
    km_trim(0);
  }
  inject_failure(Fault::purge, 0);
  for (auto& h : live) {
    EXPECT_TRUE(intact(h));
    km_free(h.p);
  }
}

TEST_F(Faults, ImmediatePurgeThatFailsFallsBackToDirtyPages) {
  // KMALLOC_PURGE_DELAY_MS=0 purges a page's slots the moment it is retired; when that madvise
  // fails the slots must still go back to the segment (dirty) and be reusable.
  long saved = km::g_options[int(km::Opt::purge_delay_ms)];
  km::g_options[int(km::Opt::purge_delay_ms)] = 0;
  for (int round = 0; round < 20; ++round) {
    std::vector<Held> held;
    for (unsigned i = 0; i < 200; ++i) {
      held.push_back({static_cast<unsigned char*>(km_malloc(6000)), 6000, i});
      ASSERT_NE(held.back().p, nullptr);
      fill(held.back());
    }
    inject_failure(Fault::purge, 1 + round % 3);
    for (auto& h : held) {
      EXPECT_TRUE(intact(h));
      km_free(h.p);
    }
    inject_failure(Fault::purge, 0);
  }
  km::g_options[int(km::Opt::purge_delay_ms)] = saved;
}

}  // namespace
