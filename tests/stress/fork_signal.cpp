// fork() from a signal handler that interrupted the allocator (issue 11), modelled on what glibc's
// malloc/tst-mallocfork2 checks (this is our own code). Two processes:
//   * the target loops over malloc, realloc, free, calloc, posix_memalign and malloc_trim (with
//     --threads N > 1, N threads do, and free each other's blocks too); its SIGUSR1 handler calls
//     fork(); the child mallocs, frees, starts a thread, joins it and _exit(0)s; the handler waits
//     for the child and counts it.
//   * the runner (this main) sends the target SIGUSR1, each 0-200 us after the last handler returned,
//     and watches shared counters:
//     when no fork completes, or a target thread's loop does not move, for --stall seconds, it
//     reports a hang (the call each target thread was in, every thread's state, wchan, signal
//     masks and kernel stack, and a gdb backtrace when gdb is installed), kills the processes and
//     fails. A stall in which no stalled thread is ever seen waiting for a lock (sched_yield or
//     futex), only busy in the kernel, is waited out, up to 120 s, and counted apart.
// Usage: fork_signal [--threads N] [--forks N] [--stall SECONDS] [--no-gdb]. Exit 0: every fork's
// child exited 0; 1: a child failed, or the target died; 2: a hang.
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <dirent.h>
#include <malloc.h>
#include <pthread.h>
#include <string>
#include <sys/mman.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

constexpr int kMaxThreads = 16;
enum Call : int { kNone, kMalloc, kRealloc, kFree, kCalloc, kMemalign, kTrim, kRemoteFree, kCalls };
const char* const kCallName[kCalls] = {"-", "malloc", "realloc", "free", "calloc", "posix_memalign",
                                       "malloc_trim", "free (another thread's block)"};

// Shared between the runner, the target and the target's children (MAP_SHARED, before fork).
struct Shared {
  std::atomic<long> forks;            // forks whose child exited 0
  std::atomic<long> bad_children;     // children that exited otherwise
  std::atomic<long> fork_failures;    // fork() returned -1
  std::atomic<int> child;             // the child being waited for, 0 if none
  std::atomic<int> call[kMaxThreads];         // the call each target thread is in now
  std::atomic<long> interrupted[kCalls];      // handlers that interrupted each call
  std::atomic<int> last_interrupted;          // the call the latest handler interrupted
  std::atomic<int> tids[kMaxThreads];
  std::atomic<long> iters[kMaxThreads];       // loop iterations of each target thread
  std::atomic<bool> stop;             // the target has made enough forks: stop
  std::atomic<bool> ready;            // the target's handler is installed
  std::atomic<long> handled;          // handlers that have returned
};
Shared* g_sh;
long g_target;   // forks to make
thread_local int tl_index = 0;

// ---------------------------------------------------------------------------------- the target

void* child_thread(void* p) {
  void* q = malloc(1000);
  std::memset(q, 2, 1000);
  free(q);
  return p;
}

[[noreturn]] void child_work() {
  void* a = malloc(100);
  void* b = malloc(200000);
  if (!a || !b) _exit(3);
  std::memset(a, 1, 100);
  std::memset(b, 1, 200000);
  free(a);
  pthread_t t;
  if (pthread_create(&t, nullptr, child_thread, b) != 0) _exit(4);
  void* r = nullptr;
  pthread_join(t, &r);
  free(r);
  _exit(0);
}

void on_usr1(int) {
  int saved = errno;
  int c = g_sh->call[tl_index].load(std::memory_order_relaxed);
  g_sh->interrupted[c].fetch_add(1, std::memory_order_relaxed);
  g_sh->last_interrupted.store(c, std::memory_order_relaxed);
  pid_t pid = fork();
  if (pid == 0) child_work();
  if (pid < 0) {
    g_sh->fork_failures.fetch_add(1);
  } else {
    g_sh->child.store(pid);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    g_sh->child.store(0);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) g_sh->forks.fetch_add(1);
    else g_sh->bad_children.fetch_add(1);
    if (g_sh->forks.load() >= g_target) g_sh->stop.store(true);
  }
  g_sh->handled.fetch_add(1);
  errno = saved;
}

std::atomic<void*> g_exchange[64];

void set_call(Call c) { g_sh->call[tl_index].store(c, std::memory_order_relaxed); }

void churn(int index, int threads) {
  tl_index = index;
  g_sh->tids[index].store(int(gettid()));
  void* ring[64] = {};
  unsigned r = 2654435761u * unsigned(index + 1);
  for (unsigned long it = 0; !g_sh->stop.load(std::memory_order_relaxed); ++it) {
    r ^= r << 13, r ^= r >> 17, r ^= r << 5;
    unsigned slot = r % 64;
    size_t size = (r >> 8) % 16 == 0 ? 100000 + (r >> 12) % 1000000 : 1 + (r >> 12) % 3000;
    switch ((r >> 24) % 8) {
      case 0:
      case 1:
        set_call(kFree);
        free(ring[slot]);
        set_call(kMalloc);
        ring[slot] = malloc(size);
        break;
      case 2:
        set_call(kRealloc);
        if (void* q = realloc(ring[slot], size)) ring[slot] = q;
        break;
      case 3:
        set_call(kFree);
        free(ring[slot]);
        ring[slot] = nullptr;
        break;
      case 4:
        set_call(kFree);
        free(ring[slot]);
        set_call(kCalloc);
        ring[slot] = calloc(1 + size % 7, size / 7 + 1);
        break;
      case 5: {
        set_call(kFree);
        free(ring[slot]);
        ring[slot] = nullptr;
        set_call(kMemalign);
        void* p = nullptr;
        if (posix_memalign(&p, size_t(16) << ((r >> 4) % 13), size) == 0) ring[slot] = p;
        break;
      }
      case 6:
        if (threads > 1) {   // hand the block to whichever thread comes next; free what we get
          void* got = g_exchange[(r >> 3) % 64].exchange(ring[slot]);
          ring[slot] = nullptr;
          set_call(kRemoteFree);
          free(got);
        }
        break;
      case 7:
        if (it % 64 == 0) {
          set_call(kTrim);
          malloc_trim(0);
        }
        break;
    }
    if (ring[slot]) static_cast<char*>(ring[slot])[0] = char(r);
    set_call(kNone);
    g_sh->iters[index].fetch_add(1, std::memory_order_relaxed);
  }
  for (void* p : ring) free(p);
}

[[noreturn]] void target(int threads) {
  struct sigaction sa = {};
  sa.sa_handler = on_usr1;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, nullptr);
  g_sh->ready.store(true);
  std::vector<std::thread> ts;
  for (int i = 1; i < threads; ++i) ts.emplace_back(churn, i, threads);
  churn(0, threads);   // until a handler has counted enough forks
  signal(SIGUSR1, SIG_IGN);
  for (auto& t : ts) t.join();
  for (auto& e : g_exchange) free(e.exchange(nullptr));
  _exit(0);
}

// ---------------------------------------------------------------------------------- the runner

std::string slurp(const std::string& path) {
  std::string s;
  if (FILE* f = std::fopen(path.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
    std::fclose(f);
  }
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

// Fields 14 and 15 of a stat line (after the command's closing parenthesis): CPU ticks so far.
std::string cpu_ticks(const std::string& stat) {
  size_t at = stat.rfind(')');
  if (at == std::string::npos) return "?";
  long user = 0, sys = 0;
  if (std::sscanf(stat.c_str() + at + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld",
                  &user, &sys) != 2)
    return "?";
  return std::to_string(user) + "+" + std::to_string(sys);
}

void describe(const char* who, int pid, bool gdb) {
  if (pid <= 0) return;
  std::fprintf(stderr, "  %s %d:\n", who, pid);
  std::string dir = "/proc/" + std::to_string(pid) + "/task";
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      std::string t = dir + "/" + e->d_name;
      std::string stat = slurp(t + "/stat");
      size_t close_paren = stat.rfind(')');
      char state = '?';
      if (close_paren != std::string::npos && close_paren + 2 < stat.size()) state = stat[close_paren + 2];
      std::string status = slurp(t + "/status"), sig;
      for (const char* key : {"SigPnd:", "ShdPnd:", "SigBlk:"}) {
        size_t at = status.find(key);
        if (at == std::string::npos) continue;
        sig += ' ';
        sig.append(status, at, status.find('\n', at) - at);
      }
      std::fprintf(stderr, "    thread %s %s: state %c, wchan %s,%s, utime+stime %s\n", e->d_name,
                   slurp(t + "/comm").c_str(), state, slurp(t + "/wchan").c_str(), sig.c_str(),
                   cpu_ticks(stat).c_str());
      std::string stack = slurp(t + "/stack");
      if (!stack.empty()) std::fprintf(stderr, "%s\n", stack.c_str());
    }
    closedir(d);
  }
  if (gdb && std::system("command -v gdb >/dev/null 2>&1") == 0) {
    std::string cmd = "timeout 60 gdb -q -batch -p " + std::to_string(pid) +
                      " -ex 'thread apply all bt 25' 2>/dev/null | grep -E '^(Thread|#)' >&2";
    (void)!std::system(cmd.c_str());
  }
}

// Is a stall the allocator's? Its locks wait in sched_yield (syscall 24) or a futex (202). Sample
// the stalled target threads, and the threads of the child a handler waits for, twenty times over
// two seconds: if none is ever seen there, and none gained user time (a spinning lock does), every
// one is busy in the kernel instead (wait4 reaping an
// exited child, munmap, a page fault). On this machine's kernel that has been seen to take over
// 10 s now and then when other processes load the machine (release_task ->
// proc_invalidate_siblings_dcache -> shrink_dcache_parent, all system time): slow, but no hang of
// the allocator.
bool only_the_kernel_is_busy(const std::vector<int>& tids, int child) {
  std::vector<std::string> files;
  for (int tid : tids) files.push_back("/proc/" + std::to_string(tid) + "/syscall");
  if (child > 0) {
    std::string dir = "/proc/" + std::to_string(child) + "/task";
    if (DIR* d = opendir(dir.c_str())) {
      while (dirent* e = readdir(d))
        if (e->d_name[0] != '.') files.push_back(dir + "/" + e->d_name + "/syscall");
      closedir(d);
    }
  }
  auto user_ticks = [&] {
    long sum = 0;
    for (const std::string& f : files) {
      std::string stat = slurp(f.substr(0, f.size() - 7) + "stat");
      size_t at = stat.rfind(')');
      long user = 0;
      if (at != std::string::npos &&
          std::sscanf(stat.c_str() + at + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld", &user) == 1)
        sum += user;
    }
    return sum;
  };
  long user_before = user_ticks();
  for (int i = 0; i < 20; ++i) {
    for (const std::string& f : files) {
      std::string sc = slurp(f);
      if (sc.rfind("24 ", 0) == 0 || sc.rfind("202 ", 0) == 0) return false;
    }
    usleep(100000);
  }
  // A lock that spins shows as "running", but burns user time; one long kernel operation does not.
  return user_ticks() == user_before;
}

long now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1;
  long forks = 20000;
  int stall_s = 10;
  bool gdb = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (a == "--forks" && i + 1 < argc) forks = std::atol(argv[++i]);
    else if (a == "--stall" && i + 1 < argc) stall_s = std::atoi(argv[++i]);
    else if (a == "--no-gdb") gdb = false;
    else {
      std::fprintf(stderr, "usage: %s [--threads N] [--forks N] [--stall S] [--no-gdb]\n", argv[0]);
      return 64;
    }
  }
  if (threads < 1) threads = 1;
  if (threads > kMaxThreads) threads = kMaxThreads;
  void* mem = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return 1;
  g_sh = new (mem) Shared{};
  g_target = forks;
  pid_t t = fork();
  if (t == 0) target(threads);
  if (t < 0) return 1;
  while (!g_sh->ready.load()) usleep(100);
  unsigned r = unsigned(t) * 2654435761u;
  long start = now_ms(), last_progress = start, last_forks = 0, stopped_at = 0;
  long last_iters[kMaxThreads] = {}, iter_progress[kMaxThreads];
  for (long& x : iter_progress) x = start;
  int status = 0;
  bool exited = false;
  std::string hang;   // why the run is declared hung
  long slow_since = 0;   // when the current stall with only the kernel busy was first seen
  int slow_kernel = 0;
  constexpr long kSlowLimitS = 120;
  while (!exited && hang.empty()) {
    bool stop = g_sh->stop.load();
    // One signal at a time: the next goes out once the last handler has returned, after a random
    // 0-200 us, so that it lands anywhere in the loop and the interrupted call always gets to go on
    // (a signal pending at every handler's return would starve the thread that gets them).
    long handled = g_sh->handled.load();
    if (!stop) kill(t, SIGUSR1);
    for (int i = 0; i < 2000 && g_sh->handled.load() == handled && !g_sh->stop.load(); ++i) usleep(20);
    r ^= r << 13, r ^= r >> 17, r ^= r << 5;
    usleep(r % 200);
    if (waitpid(t, &status, WNOHANG) == t) exited = true;
    long f = g_sh->forks.load() + g_sh->bad_children.load() + g_sh->fork_failures.load();
    long now = now_ms();
    if (f != last_forks) last_forks = f, last_progress = now;
    if (stop && !stopped_at) stopped_at = now;
    if (exited) break;
    // A hang: no fork for --stall seconds, a thread whose loop stopped moving (it may be stuck
    // while others still fork), or a target that does not exit once done.
    std::vector<int> stalled;
    for (int i = 0; i < threads && !stop; ++i) {
      long it = g_sh->iters[i].load();
      if (it != last_iters[i]) last_iters[i] = it, iter_progress[i] = now;
      else if (now - iter_progress[i] > stall_s * 1000L) stalled.push_back(g_sh->tids[i].load());
    }
    char why[256];   // (snprintf: GCC 12 warns falsely on string + to_string here)
    if (!stalled.empty()) {
      int n = std::snprintf(why, sizeof why, "target thread(s) made no progress for %d s:", stall_s);
      for (int tid : stalled)
        if (n > 0 && size_t(n) < sizeof why) n += std::snprintf(why + n, sizeof why - size_t(n), " %d", tid);
      hang = why;
    }
    if (!stop && now - last_progress > stall_s * 1000L && hang.empty()) {
      std::snprintf(why, sizeof why, "no fork completed for %d s", stall_s);
      hang = why;
      for (int i = 0; i < threads; ++i) stalled.push_back(g_sh->tids[i].load());
    }
    if (stop && now - stopped_at > stall_s * 1000L) hang = "the target did not exit once done";
    if (stop && stalled.empty()) stalled.push_back(t);
    if (!hang.empty() && only_the_kernel_is_busy(stalled, g_sh->child.load())) {
      if (!slow_since) {
        slow_since = now;
        ++slow_kernel;
      }
      if (now_ms() - slow_since < kSlowLimitS * 1000L) {   // wait for the kernel, up to a limit
        hang.clear();
        now = now_ms();
        last_progress = now;
        for (long& x : iter_progress) x = now;
        if (stopped_at) stopped_at = now;
        continue;
      }
      hang += " (only the kernel was busy, for " + std::to_string(kSlowLimitS) + " s)";
    } else if (hang.empty() && now - last_progress < 100) {
      slow_since = 0;
    }
  }
  long ms = now_ms() - start;
  std::fprintf(stderr, "fork_signal: %d thread(s): %ld forks (children exited 0), %ld bad children, "
               "%ld failed forks in %.1f s\n", threads, g_sh->forks.load(), g_sh->bad_children.load(),
               g_sh->fork_failures.load(), double(ms) / 1000);
  if (slow_kernel)
    std::fprintf(stderr, "  %d stall(s) of over %d s with only the kernel busy (reaping a child, "
                 "munmap, page faults): waited out, not counted as hangs\n", slow_kernel, stall_s);
  std::fprintf(stderr, "  handlers interrupted:");
  for (int c = 0; c < kCalls; ++c)
    std::fprintf(stderr, " %s %ld%s", kCallName[c], g_sh->interrupted[c].load(),
                 c + 1 < kCalls ? "," : "\n");
  if (!hang.empty()) {
    std::fprintf(stderr, "fork_signal: HANG: %s (after %ld forks); the latest handler interrupted %s; "
                 "target threads are in:", hang.c_str(), last_forks,
                 kCallName[g_sh->last_interrupted.load()]);
    for (int i = 0; i < threads; ++i) std::fprintf(stderr, " %s", kCallName[g_sh->call[i].load()]);
    std::fprintf(stderr, "\n");
    int child = g_sh->child.load();
    describe("target", t, gdb);
    describe("child", child, gdb);
    if (child > 0) kill(child, SIGKILL);
    kill(t, SIGKILL);
    waitpid(t, &status, 0);
    return 2;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "fork_signal: the target died (status 0x%x)\n", status);
    return 1;
  }
  return g_sh->bad_children.load() == 0 && g_sh->forks.load() >= forks ? 0 : 1;
}
