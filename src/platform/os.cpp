// os.cpp — the kernel primitives declared in os.h. Raw syscalls and fds only: no stdio, no malloc.
#include "platform/os.h"

#include <atomic>
#include <cerrno>
#include <ctime>
#include <csignal>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char** environ;

namespace km::os {
namespace {

std::atomic<size_t> c_mmap{0}, c_munmap{0}, c_purge{0}, c_purged{0}, c_remap{0}, c_mapped{0};
std::atomic<long> g_fault[static_cast<int>(Fault::count)];

// Preserves errno across a primitive: callers decide what errno the user sees.
struct ErrnoGuard {
  int saved = errno;
  ~ErrnoGuard() { errno = saved; }
};

bool injected(Fault f) {
  auto& slot = g_fault[static_cast<int>(f)];
  long n = slot.load(std::memory_order_relaxed);
  if (n <= 0) return false;
  if (slot.fetch_sub(1, std::memory_order_relaxed) == 1) return true;
  return false;
}

}  // namespace

void inject_failure(Fault which, long nth) {
  g_fault[static_cast<int>(which)].store(nth, std::memory_order_relaxed);
}

void* map(size_t size) {
  ErrnoGuard g;
  if (injected(Fault::map)) return nullptr;
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  c_mmap.fetch_add(1, std::memory_order_relaxed);
  c_mapped.fetch_add(size, std::memory_order_relaxed);
  return p;
}

void* map_aligned(size_t size, size_t align) {
  if (align <= kPageSize) return map(size);
  if (size + align < size) return nullptr;
  // Over-map by `align`, then cut the unaligned head and the tail.
  auto* raw = static_cast<char*>(map(size + align));
  if (!raw) return nullptr;
  uintptr_t a = (reinterpret_cast<uintptr_t>(raw) + align - 1) & ~(uintptr_t(align) - 1);
  auto* p = reinterpret_cast<char*>(a);
  size_t head = size_t(p - raw), tail = align - head;
  if (head) unmap(raw, head);
  if (tail) unmap(p + size, tail);
  return p;
}

bool unmap(void* p, size_t size) {
  ErrnoGuard g;
  if (::munmap(p, size) != 0) return false;
  c_munmap.fetch_add(1, std::memory_order_relaxed);
  c_mapped.fetch_sub(size, std::memory_order_relaxed);
  return true;
}

bool purge(void* p, size_t size) {
  ErrnoGuard g;
  if (injected(Fault::purge)) return false;
  if (::madvise(p, size, MADV_DONTNEED) != 0) return false;
  c_purge.fetch_add(1, std::memory_order_relaxed);
  c_purged.fetch_add(size, std::memory_order_relaxed);
  return true;
}

namespace {
void count_remap(size_t old_size, size_t new_size) {
  c_remap.fetch_add(1, std::memory_order_relaxed);
  if (new_size >= old_size) c_mapped.fetch_add(new_size - old_size, std::memory_order_relaxed);
  else c_mapped.fetch_sub(old_size - new_size, std::memory_order_relaxed);
}
}  // namespace

bool resize_in_place(void* p, size_t old_size, size_t new_size) {
  ErrnoGuard g;
  if (injected(Fault::remap)) return false;
  if (::mremap(p, old_size, new_size, 0) == MAP_FAILED) return false;
  count_remap(old_size, new_size);
  return true;
}

bool move_to(void* p, size_t old_size, size_t new_size, void* target) {
  ErrnoGuard g;
  if (injected(Fault::remap)) return false;
  if (::mremap(p, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, target) == MAP_FAILED) return false;
  // The target's own mapping (new_size bytes, counted when it was mapped) is replaced.
  c_remap.fetch_add(1, std::memory_order_relaxed);
  c_mapped.fetch_sub(old_size, std::memory_order_relaxed);
  return true;
}

namespace {
bool protect(void* p, size_t size, int prot) {
  ErrnoGuard g;
  if (injected(Fault::protect)) return false;
  return ::mprotect(p, size, prot) == 0;
}
}  // namespace

bool protect_none(void* p, size_t size) { return protect(p, size, PROT_NONE); }
bool protect_rw(void* p, size_t size) { return protect(p, size, PROT_READ | PROT_WRITE); }

int64_t now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

size_t kernel_page_size() { return size_t(getauxval(AT_PAGESZ)); }

namespace {
int g_stderr_fd = 2;
// keep_stderr's duplicate takes the lowest free fd at or above this: programs (and shells) use the
// low numbers, and one that closes or dup2()s onto "its" fd 3..9 must never hit ours.
constexpr int kKeptStderrMinFd = 100;
}  // namespace

void keep_stderr() {
  ErrnoGuard g;
  int fd = ::fcntl(2, F_DUPFD_CLOEXEC, kKeptStderrMinFd);
  if (fd >= 0) g_stderr_fd = fd;
}

namespace {
// Writes all of buf to fd, retrying on EINTR and short writes; stops at any other error.
void write_all(int fd, const char* buf, size_t len) {
  while (len > 0) {
    ssize_t n = ::write(fd, buf, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    buf += n;
    len -= size_t(n);
  }
}
}  // namespace

void write_stderr(const char* buf, size_t len) {
  ErrnoGuard g;
  write_all(g_stderr_fd, buf, len);
}

namespace {
char g_report_path[4096];   // KMALLOC_STATS_FILE, absolute, with "%p" still in it; "" = stderr

// Reads a small /proc/self file into buf (NUL-terminated); the number of bytes read, 0 on failure.
size_t read_proc_file(const char* path, char* buf, size_t cap) {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = ::read(fd, buf, cap - 1);
  ::close(fd);
  if (n <= 0) n = 0;
  buf[n] = 0;
  return size_t(n);
}

// Appends s to buf at *at (bounded, NUL-terminated); false when it does not fit.
bool append(char* buf, size_t cap, size_t* at, const char* s, size_t n) {
  if (*at + n >= cap) return false;
  __builtin_memcpy(buf + *at, s, n);
  *at += n;
  buf[*at] = 0;
  return true;
}

size_t format_decimal(char* out, uint64_t v) {
  char tmp[24];
  size_t n = 0, len = 0;
  do tmp[n++] = char('0' + v % 10); while ((v /= 10) != 0);
  while (n) out[len++] = tmp[--n];
  return len;
}
}  // namespace

bool set_report_file(const char* path) {
  ErrnoGuard g;
  size_t at = 0, n = __builtin_strlen(path);
  g_report_path[0] = 0;
  if (n == 0) return true;
  if (path[0] != '/') {
    if (::syscall(SYS_getcwd, g_report_path, sizeof g_report_path) < 0) return g_report_path[0] = 0, false;
    at = __builtin_strlen(g_report_path);
    if (!append(g_report_path, sizeof g_report_path, &at, "/", 1)) return g_report_path[0] = 0, false;
  }
  if (!append(g_report_path, sizeof g_report_path, &at, path, n)) return g_report_path[0] = 0, false;
  return true;
}

const char* report_file() { return g_report_path; }

void write_report(const char* buf, size_t len) {
  if (!g_report_path[0]) return write_stderr(buf, len);
  ErrnoGuard g;
  char path[sizeof g_report_path + 64];
  size_t at = 0;
  for (const char* s = g_report_path; *s && at < sizeof path - 24; ++s) {
    if (s[0] == '%' && s[1] == 'p') {
      at += format_decimal(path + at, uint64_t(process_id()));
      ++s;
    } else {
      path[at++] = *s;
    }
  }
  path[at] = 0;
  int fd = ::open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return write_stderr(buf, len);
  write_all(fd, buf, len);
  ::close(fd);
}

int process_id() { return int(::syscall(SYS_getpid)); }
int parent_process_id() { return int(::syscall(SYS_getppid)); }

void program_name(char* buf, size_t cap) {
  ErrnoGuard g;
  buf[0] = 0;
  if (cap < 2) return;
  size_t n = read_proc_file("/proc/self/comm", buf, cap);
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) buf[--n] = 0;
  if (n > 0) return;
  // No comm (an old or restricted /proc): argv[0] from the command line, without its directory.
  char cmd[256];
  if (read_proc_file("/proc/self/cmdline", cmd, sizeof cmd) == 0) return;
  const char* base = cmd;
  for (const char* s = cmd; *s; ++s)
    if (*s == '/') base = s + 1;
  size_t at = 0;
  while (base[at] && at < cap - 1) buf[at] = base[at], ++at;
  buf[at] = 0;
}

void on_fork(void (*prepare)(), void (*parent)(), void (*child)()) {
  pthread_atfork(prepare, parent, child);
}
void on_fork_child(void (*fn)()) { on_fork(nullptr, nullptr, fn); }

size_t resident_bytes() {
  ErrnoGuard g;
  int fd = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[128];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  // statm: size resident shared ... (in pages); we want the second field.
  const char* s = buf;
  while (*s && *s != ' ') ++s;
  while (*s == ' ') ++s;
  size_t pages = 0;
  while (*s >= '0' && *s <= '9') pages = pages * 10 + size_t(*s++ - '0');
  return pages * kernel_page_size();
}

bool resident_pages(const void* p, size_t pages, unsigned char* vec) {
  ErrnoGuard g;
  if (::mincore(const_cast<void*>(p), pages * kPageSize, vec) != 0) return false;
  for (size_t i = 0; i < pages; ++i) vec[i] &= 1;
  return true;
}

size_t resident_in(const void* p, size_t size) {
  ErrnoGuard g;
  unsigned char vec[256];   // one byte per page, a chunk at a time: no allocation
  size_t resident = 0;
  auto* at = static_cast<const char*>(p);
  for (size_t done = 0; done < size;) {
    size_t chunk = size - done < sizeof vec * kPageSize ? size - done : sizeof vec * kPageSize;
    if (::mincore(const_cast<char*>(at + done), chunk, vec) != 0) return resident;
    for (size_t i = 0; i < (chunk + kPageSize - 1) / kPageSize; ++i) resident += (vec[i] & 1) * kPageSize;
    done += chunk;
  }
  return resident;
}

namespace {
bool name_matches(const char* entry, const char* name) {
  while (*name && *entry == *name) ++entry, ++name;
  return *name == 0 && *entry == '=';
}

// For the rare case that malloc runs before libc has set `environ` (very early in a preloaded
// process): /proc/self/environ is read once, a chunk at a time, and only its KMALLOC_* entries are
// kept, so an environment of any size is read to its end. kEnvKept holds every option at once, the
// longest (KMALLOC_STATS_FILE, up to the 4 KiB of a path) included; an entry that does not fit is
// dropped with a line on stderr, never silently.
constexpr char kOurPrefix[] = "KMALLOC_";
constexpr size_t kEnvKept = 3 * 4096;
char g_env_kept[kEnvKept + 1];   // NUL-terminated entries, then an empty one
bool g_env_loaded = false;

void env_warn_dropped(const char* entry, size_t len) {
  constexpr char kWhy[] = "kmalloc: environment read from /proc is too large; ignored: ";
  write_stderr(kWhy, sizeof kWhy - 1);
  size_t name = 0;
  while (name < len && entry[name] != '=') ++name;
  if (name > 0) write_stderr(entry, name);
  else write_stderr(kOurPrefix, sizeof kOurPrefix - 1);
  write_stderr("\n", 1);
}

void proc_environ_load() {
  g_env_loaded = true;
  int fd = ::open("/proc/self/environ", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  char chunk[1024];
  size_t kept = 0;       // bytes of g_env_kept in use: whole entries, then the current one's
  size_t entry_at = 0;   // where the current entry starts in g_env_kept (= the end of the whole ones)
  size_t entry_pos = 0;  // bytes of the current entry read so far
  bool skip = false;     // the current entry is not ours, or did not fit: read to its end
  for (;;) {
    ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; ++i) {
      char c = chunk[i];
      if (!skip && entry_pos < sizeof kOurPrefix - 1 && c != kOurPrefix[entry_pos]) skip = true;
      if (!skip && kept == kEnvKept) {
        env_warn_dropped(g_env_kept + entry_at, kept - entry_at);
        skip = true;
      }
      if (skip) kept = entry_at;
      else g_env_kept[kept++] = c;
      ++entry_pos;
      if (c == 0) entry_at = kept, entry_pos = 0, skip = false;
    }
  }
  ::close(fd);
  g_env_kept[entry_at] = 0;   // the end mark (a last entry without its NUL is dropped)
}

const char* proc_environ_lookup(const char* name) {
  if (!g_env_loaded) proc_environ_load();
  for (const char* e = g_env_kept; *e; e += __builtin_strlen(e) + 1)
    if (name_matches(e, name)) return e + __builtin_strlen(name) + 1;
  return nullptr;
}
}  // namespace

const char* getenv_raw(const char* name) {
  ErrnoGuard g;
  if (getauxval(AT_SECURE)) return nullptr;   // setuid/setgid: options are ignored, silently
  if (environ == nullptr) return proc_environ_lookup(name);
  for (char** e = environ; *e; ++e)
    if (name_matches(*e, name)) return *e + __builtin_strlen(name) + 1;
  return nullptr;
}

int thread_id() { return int(::syscall(SYS_gettid)); }

namespace {
void* thread_trampoline(void* fn) {
  reinterpret_cast<void (*)()>(fn)();
  return nullptr;
}
}  // namespace

bool start_thread(void (*fn)(), const char* name, size_t stack_bytes) {
  ErrnoGuard g;
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0) return false;
  pthread_attr_setstacksize(&attr, stack_bytes);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);   // the new thread inherits the full mask
  pthread_t t;
  int rc = pthread_create(&t, &attr, thread_trampoline, reinterpret_cast<void*>(fn));
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  pthread_attr_destroy(&attr);
  if (rc != 0) return false;
  pthread_setname_np(t, name);
  return true;
}

void futex_wait(const uint32_t* word, uint32_t seen) {
  ErrnoGuard g;
  ::syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, seen, nullptr, nullptr, 0);
}

void futex_wake_one(const uint32_t* word) {
  ErrnoGuard g;
  ::syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

void sleep_ms(long ms) {
  ErrnoGuard g;
  timespec ts{ms / 1000, (ms % 1000) * 1000000L};
  ::nanosleep(&ts, nullptr);
}

void yield() { ::sched_yield(); }

static_assert(sizeof(ThreadKey) == sizeof(pthread_key_t), "os::ThreadKey must hold a pthread_key_t");

bool thread_key_create(ThreadKey* key, void (*fn)(void*)) {
  ErrnoGuard g;
  pthread_key_t k;
  if (pthread_key_create(&k, fn) != 0) return false;
  *key = ThreadKey(k);
  return true;
}

bool thread_key_set(ThreadKey key, void* value) {
  ErrnoGuard g;
  return pthread_setspecific(pthread_key_t(key), value) == 0;
}

uint64_t random_u64() {
  ErrnoGuard g;
  uint64_t r = 0;
  if (::getrandom(&r, sizeof r, GRND_NONBLOCK) == ssize_t(sizeof r)) return r;
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  r = uint64_t(ts.tv_nsec) * 0x9E3779B97F4A7C15ull ^ reinterpret_cast<uintptr_t>(&r);
  return r ^ (r >> 29);
}

void abort_now() {
  // No stdio, no atexit handlers: the heap may be corrupt.

  ::syscall(SYS_tgkill, ::getpid(), thread_id(), 6 /* SIGABRT */);
  ::_exit(134);
}

Counters counters() {
  auto r = [](std::atomic<size_t>& a) { return a.load(std::memory_order_relaxed); };
  return Counters{r(c_mmap), r(c_munmap), r(c_purge), r(c_purged), r(c_remap), r(c_mapped)};
}

}  // namespace km::os
