// A fork child reuses the parent's heaps (issue 10): the forking thread's heap is kept, and the
// heaps of threads that do not exist in the child are pooled, so that the child's frees of parent
// objects make room for its next mallocs instead of stranding it. Each child reports through its
// exit status (0: as expected) and says on stderr what it saw.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <unordered_set>
#include <vector>

#include "kmalloc.h"

namespace {

size_t mapped() {
  km_stats st;
  km_stats_get(&st);
  return st.mapped;
}

int wait_ok(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// The 4 MiB segments (src/core/config.h) that hold the blocks of v.
std::unordered_set<uintptr_t> segments_of(const std::vector<void*>& v) {
  std::unordered_set<uintptr_t> s;
  for (void* p : v) s.insert(reinterpret_cast<uintptr_t>(p) >> 22);
  return s;
}

// In a child: free every block of v, allocate as many of `size` bytes, and return how many of the
// new blocks lie in the segments the freed ones were in. A freed page may wait, be retired and be set
// up again on other slots, so the addresses need not be the same ones; the memory is. (With the heap
// set aside, the new blocks came from segments of another heap, or new ones.)
size_t replace_and_count_reused(std::vector<void*>& v, size_t size, const std::unordered_set<uintptr_t>& old) {
  for (void*& p : v) km_free(p);
  for (void*& p : v) p = km_malloc(size);
  size_t reused = 0;
  for (void* p : v) reused += old.count(reinterpret_cast<uintptr_t>(p) >> 22);
  return reused;
}

// Run `child` in a fork child (it returns the exit status) and expect 0.
template <class F>
void in_child(F child) {
  fflush(nullptr);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    alarm(60);   // a hung child dies instead of hanging the suite
    _exit(child());
  }
  EXPECT_EQ(wait_ok(pid), 0);
}

// The forking thread keeps its heap: cells the child frees serve its next mallocs of the size.
TEST(ForkReuse, ChildReusesTheParentsFreedCells) {
  constexpr size_t kCount = 10000, kSize = 700;
  std::vector<void*> v(kCount);
  for (void*& p : v) p = km_malloc(kSize);
  std::unordered_set<uintptr_t> old = segments_of(v);
  in_child([&] {
    // Every page of the lane is full but the last, which the child sets off its list: the freed
    // block's page is the only one on the list, and its only free cell is the freed one.
    void* one = v[kCount / 2];
    km_free(one);
    v[kCount / 2] = km_malloc(kSize);
    if (v[kCount / 2] != one) {
      fprintf(stderr, "child: freed %p, malloc returned %p\n", one, v[kCount / 2]);
      return 1;
    }
    size_t reused = replace_and_count_reused(v, kSize, old);
    fprintf(stderr, "child: %zu of %zu new blocks in the freed ones' segments\n", reused, kCount);
    return reused >= kCount * 9 / 10 ? 0 : 1;
  });
  for (void* p : v) km_free(p);
}

// The case: the child replaces every one of 1,000,000 100-byte objects three times; its
// mapped memory stays within 10% of the parent's (it grew by 87% when the child set the heap aside).
TEST(ForkReuse, ChildReplacingAMillionObjectsMapsNoMore) {
  constexpr size_t kCount = 1000000, kSize = 100;
  void** v = static_cast<void**>(km_malloc(kCount * sizeof(void*)));
  ASSERT_NE(v, nullptr);
  for (size_t i = 0; i < kCount; ++i) v[i] = km_malloc(kSize);
  size_t parent = mapped();
  in_child([&] {
    for (int round = 0; round < 3; ++round)
      for (size_t i = 0; i < kCount; ++i) {
        km_free(v[i]);
        v[i] = km_malloc(kSize);
      }
    km_trim(0);
    size_t child = mapped();
    fprintf(stderr, "mapped: parent %.1f MiB, child after 3 rounds %.1f MiB\n", parent / 1048576.0,
            child / 1048576.0);
    return child <= parent + parent / 10 ? 0 : 1;
  });
  for (size_t i = 0; i < kCount; ++i) km_free(v[i]);
  km_free(v);
}

// A thread that exists in the parent only: the child adopts its heap's pages when it needs memory,
// so blocks that thread allocated are reused, and nothing new is mapped.
TEST(ForkReuse, ChildReusesTheHeapOfAThreadThatIsNotThere) {
  constexpr size_t kCount = 20000, kSize = 200;
  std::vector<void*> v(kCount);
  std::atomic<int> phase{0};
  std::thread worker([&] {
    for (void*& p : v) p = km_malloc(kSize);
    phase = 1;
    while (phase.load() != 2) std::this_thread::yield();   // running while the parent forks
  });
  while (phase.load() != 1) std::this_thread::yield();
  std::unordered_set<uintptr_t> old = segments_of(v);
  km_trim(0);   // no spare segments left from earlier tests: a new page would map a segment
  in_child([&] {
    size_t before = mapped();
    size_t reused = replace_and_count_reused(v, kSize, old);
    size_t after = mapped();
    fprintf(stderr, "child: %zu of %zu new blocks in the worker's segments; mapped %.1f -> %.1f MiB\n",
            reused, kCount, before / 1048576.0, after / 1048576.0);
    return reused >= kCount * 9 / 10 && after <= before + (size_t(1) << 20) ? 0 : 1;
  });
  phase = 2;
  worker.join();
  for (void* p : v) km_free(p);
}

}  // namespace
