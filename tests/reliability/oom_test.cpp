// Out of memory under an address-space limit (RLIMIT_AS), linked with -lkmalloc so malloc, new and
// every other entry point is kmalloc's. Runs in a forked child (a gtest death test) so the limit does
// not leak into other tests. 16 threads at once: fill the address space until malloc fails, then call
// every function with requests that cannot be served (NULL + ENOMEM, std::bad_alloc, nullptr from
// nothrow new, ENOMEM from posix_memalign with *memptr untouched), check that every block already
// handed out kept its contents, free everything, and allocate again.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <malloc.h>
#include <new>
#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

namespace {

constexpr int kThreads = 16;
constexpr size_t kHeadroom = size_t(256) << 20;   // address space left above the start
constexpr size_t kBig = size_t(16) << 20;         // never fits once the space is used up

std::atomic<int> g_failures{0};
pthread_barrier_t g_barrier;

#define OOM_CHECK(cond, ...)                                         \
  do {                                                               \
    if (!(cond)) {                                                   \
      g_failures.fetch_add(1);                                       \
      std::fprintf(stderr, "line %d: %s: ", __LINE__, #cond);        \
      std::fprintf(stderr, __VA_ARGS__);                             \
      std::fprintf(stderr, "\n");                                    \
    }                                                                \
  } while (0)

// Held blocks form a list threaded through themselves, so no other memory is needed to track them
// (anything else could fail to allocate too). The rest of each block carries a fill pattern.
struct Held {
  Held* next;
  size_t size;
  uint64_t seed;
};
unsigned char pat(uint64_t seed, size_t i) { return static_cast<unsigned char>(seed * 151 + i * 13); }
void hold(Held** list, void* p, size_t size, uint64_t seed) {
  auto* h = static_cast<Held*>(p);
  h->next = *list;
  h->size = size;
  h->seed = seed;
  auto* b = static_cast<unsigned char*>(p);
  for (size_t i = sizeof(Held); i < size; ++i) b[i] = pat(seed, i);
  *list = h;
}
bool intact(const Held* h) {
  auto* b = reinterpret_cast<const unsigned char*>(h);
  for (size_t i = sizeof(Held); i < h->size; ++i)
    if (b[i] != pat(h->seed, i)) return false;
  return true;
}

struct Tally {
  size_t large = 0, small = 0, bytes = 0;
};

void* worker(void* arg) {
  auto* tally = static_cast<Tally*>(arg);
  uint64_t seed = reinterpret_cast<uintptr_t>(arg);
  Held* list = nullptr;
  pthread_barrier_wait(&g_barrier);   // the limit is set now

  // Phase 1: fill the address space: some small cells (so each thread owns segments), large blocks
  // until they fail, then small cells of two lanes until they fail.
  auto fill_small = [&](long cap) {
    for (size_t size : {size_t(1000), size_t(100)}) {
      for (long i = 0; i < cap; ++i) {
        errno = 0;
        void* p = malloc(size);
        if (!p) {
          OOM_CHECK(errno == ENOMEM, "malloc(%zu) errno %d", size, errno);
          break;
        }
        hold(&list, p, size, ++seed);
        tally->small++, tally->bytes += size;
      }
    }
  };
  fill_small(3000);
  for (;;) {
    errno = 0;
    void* p = malloc(512 << 10);
    if (!p) {
      OOM_CHECK(errno == ENOMEM, "malloc(512 KiB) errno %d", errno);
      break;
    }
    hold(&list, p, 512 << 10, ++seed);
    tally->large++, tally->bytes += 512 << 10;
  }
  fill_small(4000000);
  pthread_barrier_wait(&g_barrier);   // every thread is out of memory

  // Phase 2: every function, with requests that cannot be served.
  errno = 0;
  OOM_CHECK(malloc(kBig) == nullptr && errno == ENOMEM, "malloc errno %d", errno);
  errno = 0;
  OOM_CHECK(calloc(1, kBig) == nullptr && errno == ENOMEM, "calloc errno %d", errno);
  errno = 0;
  OOM_CHECK(calloc(kBig / 64, 64) == nullptr && errno == ENOMEM, "calloc errno %d", errno);
  errno = 0;
  OOM_CHECK(realloc(nullptr, kBig) == nullptr && errno == ENOMEM, "realloc(NULL) errno %d", errno);
  errno = 0;
  OOM_CHECK(aligned_alloc(4096, kBig) == nullptr && errno == ENOMEM, "aligned_alloc errno %d", errno);
  errno = 0;
  OOM_CHECK(memalign(1 << 20, kBig) == nullptr && errno == ENOMEM, "memalign errno %d", errno);
  errno = 0;
  OOM_CHECK(valloc(kBig) == nullptr && errno == ENOMEM, "valloc errno %d", errno);
  errno = 0;
  OOM_CHECK(pvalloc(kBig) == nullptr && errno == ENOMEM, "pvalloc errno %d", errno);
  void* out = &out;
  int rc = posix_memalign(&out, 64, kBig);
  OOM_CHECK(rc == ENOMEM && out == &out, "posix_memalign rc %d", rc);
  rc = posix_memalign(&out, 1 << 21, kBig);
  OOM_CHECK(rc == ENOMEM && out == &out, "posix_memalign 2 MiB rc %d", rc);
  bool threw = false;
  try {
    char* volatile c = new char[kBig];
    delete[] c;
  } catch (const std::bad_alloc&) {
    threw = true;
  }
  OOM_CHECK(threw, "operator new[] did not throw");
  threw = false;
  try {
    struct alignas(256) A {
      char x[256];
    };
    A* volatile a = new A[kBig / 256];
    delete[] a;
  } catch (const std::bad_alloc&) {
    threw = true;
  }
  OOM_CHECK(threw, "aligned operator new[] did not throw");
  char* nt = new (std::nothrow) char[kBig];
  OOM_CHECK(nt == nullptr, "nothrow new returned %p", static_cast<void*>(nt));
  // Small requests of the lanes this thread exhausted fail too (no new segment can be mapped).
  errno = 0;
  OOM_CHECK(malloc(1000) == nullptr && errno == ENOMEM, "malloc(1000) errno %d", errno);
  errno = 0;
  OOM_CHECK(calloc(10, 100) == nullptr && errno == ENOMEM, "calloc(10,100) errno %d", errno);
  threw = false;
  try {
    char* volatile c = new char[1000];
    delete[] c;
  } catch (const std::bad_alloc&) {
    threw = true;
  }
  OOM_CHECK(threw, "operator new[](1000) did not throw");
  // realloc that cannot grow leaves the block as it was (a large block: mremap; a cell: a copy).
  for (Held* h = list; h; h = h->next) {
    if (h->size != 512u << 10 && h != list) continue;
    errno = 0;
    void* q = realloc(h, kBig);
    OOM_CHECK(q == nullptr && errno == ENOMEM, "realloc(%zu -> 16 MiB) errno %d", h->size, errno);
    OOM_CHECK(intact(h), "block damaged by a failed realloc");
    errno = 0;
    q = reallocarray(h, kBig / 16, 16);
    OOM_CHECK(q == nullptr && errno == ENOMEM, "reallocarray errno %d", errno);
    if (h != list) break;
  }

  // Phase 3: nothing handed out was damaged; free everything.
  pthread_barrier_wait(&g_barrier);
  size_t bad = 0;
  for (Held* h = list; h;) {
    Held* next = h->next;
    if (!intact(h)) ++bad;
    free(h);
    h = next;
  }
  OOM_CHECK(bad == 0, "%zu blocks damaged", bad);
  pthread_barrier_wait(&g_barrier);

  // Phase 4: memory is back: allocation works again, from every thread.
  list = nullptr;
  for (int i = 0; i < 4; ++i) {
    void* p = malloc(512 << 10);
    OOM_CHECK(p != nullptr, "malloc(512 KiB) after free");
    if (p) hold(&list, p, 512 << 10, ++seed);
  }
  for (int i = 0; i < 2000; ++i) {
    void* p = malloc(1000);
    OOM_CHECK(p != nullptr, "malloc(1000) after free");
    if (!p) break;
    hold(&list, p, 1000, ++seed);
  }
  char* c = new char[5000];
  c[4999] = 1;
  delete[] c;
  for (Held* h = list; h;) {
    Held* next = h->next;
    OOM_CHECK(intact(h), "block damaged after recovery");
    free(h);
    h = next;
  }
  return nullptr;
}

size_t vm_size() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  unsigned long pages = 0;
  if (f) {
    if (std::fscanf(f, "%lu", &pages) != 1) pages = 0;
    std::fclose(f);
  }
  return pages * size_t(sysconf(_SC_PAGESIZE));
}

void out_of_memory_scenario() {
  pthread_barrier_init(&g_barrier, nullptr, kThreads + 1);
  pthread_t t[kThreads];
  Tally tally[kThreads];
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 << 10);
  for (int i = 0; i < kThreads; ++i) {
    if (pthread_create(&t[i], &attr, worker, &tally[i]) != 0) {
      std::fprintf(stderr, "pthread_create failed\n");
      _exit(3);
    }
  }
  // Warm the main thread's heap and the exception machinery before the limit.
  free(malloc(100));
  try {
    throw std::bad_alloc();
  } catch (...) {
  }
  size_t vm = vm_size();
  rlimit lim{vm + kHeadroom, vm + kHeadroom};
  if (setrlimit(RLIMIT_AS, &lim) != 0) {
    std::perror("setrlimit");
    _exit(3);
  }
  pthread_barrier_wait(&g_barrier);   // start: fill
  pthread_barrier_wait(&g_barrier);   // all full
  pthread_barrier_wait(&g_barrier);   // checks done
  pthread_barrier_wait(&g_barrier);   // all freed
  for (auto& th : t) pthread_join(th, nullptr);
  size_t large = 0, small = 0, bytes = 0;
  for (auto& x : tally) large += x.large, small += x.small, bytes += x.bytes;
  std::fprintf(stderr, "limit %zu MiB above %zu MiB; %d threads held %zu large + %zu small blocks "
               "(%zu MiB) at exhaustion; failures %d\n",
               kHeadroom >> 20, vm >> 20, kThreads, large, small, bytes >> 20, g_failures.load());
  if (large == 0 || small == 0) {
    std::fprintf(stderr, "the fill did not reach the limit\n");
    _exit(2);
  }
  if (const char* path = getenv("KM_OOM_REPORT")) {   // for the parent to print
    if (FILE* f = std::fopen(path, "w")) {
      std::fprintf(f, "limit %zu MiB above %zu MiB; %d threads held %zu large + %zu small blocks "
                   "(%zu MiB) at exhaustion; every function failed with ENOMEM/bad_alloc/nullptr; "
                   "all blocks intact; allocation works again after free\n",
                   kHeadroom >> 20, vm >> 20, kThreads, large, small, bytes >> 20);
      std::fclose(f);
    }
  }
  std::fprintf(stderr, g_failures.load() ? "oom FAILED\n" : "oom ok\n");
  _exit(g_failures.load() ? 1 : 0);
}

TEST(OutOfMemory, EveryFunctionFailsCleanlyInManyThreadsAndRecovers) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  // The threadsafe death-test child re-runs this body: it must find the parent's file name.
  char path[64];
  std::snprintf(path, sizeof path, "/tmp/km-oom-%d.txt", int(getpid()));
  if (!getenv("KM_OOM_REPORT")) setenv("KM_OOM_REPORT", path, 1);
  EXPECT_EXIT(out_of_memory_scenario(), ::testing::ExitedWithCode(0), "oom ok");
  if (FILE* f = std::fopen(path, "r")) {
    char line[512];
    if (std::fgets(line, sizeof line, f)) std::printf("%s", line);
    std::fclose(f);
  }
  unlink(path);
}

}  // namespace
