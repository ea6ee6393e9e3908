// probe_script.cpp — a scripted sequence of allocations with known requested sizes, run under the
// live-bytes probe by test_probe.cpp and test_ab.py.
//
// At each checkpoint it reads its own counters from the probe's shared file (KM_PROBE_FILE) and prints
// "CHECK <name> <live> <expected>", where expected = live at the start of main + the bytes this script
// requested and has not freed. The last line is "END <pid> <expected>", which the tests check from
// outside, through the file, after the process is gone. No stdio here: printing must not allocate.
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <new>
#include <thread>

#include "probe_shared.h"

namespace {

km::probe::ProcSlot* g_slots = nullptr;

int64_t live_now() {
  pid_t pid = getpid();
  for (uint32_t i = 0; i < km::probe::kMaxProcs; ++i) {
    auto& s = g_slots[i];
    if (s.pid.load() == pid) {
      int64_t sum = 0;
      for (auto& st : s.stripes) sum += st.live.load();
      return sum;
    }
  }
  return -1;
}

int64_t g_base = 0;
int64_t g_delta = 0;  // bytes requested by the script and not freed

void say(const char* text) { (void)!write(1, text, strlen(text)); }

void check(const char* name) {
  char line[160];
  snprintf(line, sizeof line, "CHECK %s %lld %lld\n", name, (long long)live_now(),
           (long long)(g_base + g_delta));
  say(line);
}

void* must(void* p) {
  if (!p) {
    say("allocation failed\n");
    _exit(3);
  }
  return p;
}

}  // namespace

int main() {
  const char* path = getenv("KM_PROBE_FILE");
  int fd = path ? open(path, O_RDONLY) : -1;
  if (fd < 0) {
    say("KM_PROBE_FILE not set or not readable\n");
    return 2;
  }
  void* m = mmap(nullptr, km::probe::kProbeFileSize, PROT_READ, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) return 2;
  g_slots = reinterpret_cast<km::probe::ProcSlot*>(static_cast<char*>(m) + km::probe::kSlotsOffset);

  // Warm up what allocates behind our back once: a thread (glibc caches its stack and TLS vector),
  // a large block shrunk and freed, and a block freed by one thread after the thread that allocated
  // it exited (kmalloc starts its
  // purge thread on one of these: the thread's TLS vector is calloc'ed through the probe, correctly
  // counted, but not by this script).
  std::thread([] {}).join();
  free(must(realloc(must(malloc(5u << 20)), 300)));
  void* orphaned = nullptr;
  std::thread([&orphaned] { orphaned = must(malloc(64)); }).join();
  std::thread([orphaned] { free(orphaned); }).join();
  g_base = live_now();
  if (g_base < 0) {
    say("no probe slot for this process (is the probe preloaded?)\n");
    return 2;
  }
  check("start");

  // The C family.
  void* a = must(malloc(100));
  g_delta += 100;
  void* b = must(calloc(10, 30));
  g_delta += 300;
  a = must(realloc(a, 1000));
  g_delta += 900;
  void* c = nullptr;
  if (posix_memalign(&c, 64, 5000) != 0) return 3;
  g_delta += 5000;
  void* d = must(aligned_alloc(4096, 8192));
  g_delta += 8192;
  void* e = must(memalign(256, 77));
  void* f = must(valloc(33));
  // pvalloc only where the allocator has its own (jemalloc 5.3 does not: glibc's would run, and
  // jemalloc's free would crash on its block; a known jemalloc trap, not the probe's).
  bool no_pvalloc = getenv("AB_NO_PVALLOC") != nullptr;
  void* g = no_pvalloc ? must(malloc(4097)) : must(pvalloc(4097));
  g_delta += 77 + 33 + 4097;
  void* z = must(malloc(0));
  void* s253 = must(malloc(253));
  void* s254 = must(malloc(254));
  g_delta += 253 + 254;
  check("c-family");

  // Large blocks: the size no longer fits in one table cell; one beyond 32 bits.
  void* big = must(malloc(5u << 20));
  memset(big, 1, 4096);
  size_t huge_n = (size_t(5) << 30) + 7;
  void* huge = must(malloc(huge_n));  // never touched (the tests unset MALLOC_PERTURB_)
  g_delta += (5 << 20) + int64_t(huge_n);
  check("large");
  big = must(realloc(big, 300));
  g_delta += 300 - (5 << 20);
  free(huge);
  g_delta -= int64_t(huge_n);
  check("large-freed");

  // realloc edge cases: NULL, to zero, and reallocarray.
  void* r = must(realloc(nullptr, 50));
  g_delta += 50;
  r = must(reallocarray(r, 10, 20));
  g_delta += 200 - 50;
  void* gone = realloc(r, 0);  // glibc frees and returns NULL; others return a 0-byte block
  g_delta -= 200;
  check("realloc");

  // C++ operators, including aligned and sized forms.
  int* arr = new int[100];
  auto* obj = new (std::align_val_t(128)) char[1000];
  auto* one = new double(1.0);
  g_delta += 400 + 1000 + 8;
  check("new");
  delete[] arr;
  operator delete[](obj, std::align_val_t(128));
  delete one;
  g_delta -= 400 + 1000 + 8;
  check("delete");

  // Blocks allocated in one thread and freed in another.
  static void* blocks[2000];
  std::thread producer([] {
    for (int i = 0; i < 2000; ++i) blocks[i] = must(malloc(size_t(i) + 1));
  });
  producer.join();
  g_delta += 2000 * 2001 / 2;
  check("cross-thread-alloc");
  std::thread consumer([] {
    for (int i = 0; i < 2000; i += 2) free(blocks[i]);
  });
  consumer.join();
  for (int i = 0; i < 2000; i += 2) g_delta -= i + 1;
  check("cross-thread-free");
  for (int i = 1; i < 2000; i += 2) free(blocks[i]);
  for (int i = 1; i < 2000; i += 2) g_delta -= i + 1;

  // Free everything but one known leak.
  free(a);
  free(b);
  free(c);
  free(d);
  free(e);
  free(f);
  free(g);
  free(z);
  free(s253);
  free(s254);
  free(big);
  free(gone);
  g_delta -= 1000 + 300 + 5000 + 8192 + 77 + 33 + 4097 + 253 + 254 + 300;
  void* leak = must(malloc(12345));
  g_delta += 12345;
  check("freed");

  // fork: the child starts with the parent's live bytes and counts on its own.
  pid_t child = fork();
  if (child == 0) {
    void* mine = must(malloc(777));
    free(leak);
    g_delta += 777 - 12345;
    check("fork-child");
    (void)mine;
    _exit(0);
  }
  int status = 0;
  waitpid(child, &status, 0);
  check("fork-parent");

  char line[96];
  snprintf(line, sizeof line, "END %d %lld\n", int(getpid()), (long long)(g_base + g_delta));
  say(line);
  return 0;
}
