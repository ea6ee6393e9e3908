// Starts processes from a threaded program while its threads allocate (issue 11), for the preload
// tests (built without kmalloc, run under LD_PRELOAD): `spawn_program MODE N` with MODE posix_spawn,
// vfork (vfork + execve) or system; N children, each the program itself in mode `child` (which
// allocates, starts a thread and exits 0). Four threads churn malloc/realloc/free, and free blocks
// of each other, the whole time. Prints one line that must match the glibc run; exit 1 on any child
// that did not exit 0, and a 60 s watchdog turns a hang into a failure.
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <spawn.h>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

extern char** environ;

namespace {

int child_main() {
  std::vector<void*> v;
  for (int i = 0; i < 1000; ++i) v.push_back(std::malloc(size_t(1 + i * 37 % 5000)));
  std::thread t([] {
    void* p = std::malloc(100000);
    std::memset(p, 1, 100000);
    std::free(p);
  });
  t.join();
  for (void* p : v) std::free(p);
  return 0;
}

std::atomic<bool> g_stop{false};
std::atomic<void*> g_exchange[64];

void churn(unsigned seed) {
  std::vector<void*> mine(256, nullptr);
  unsigned r = seed;
  while (!g_stop.load(std::memory_order_relaxed)) {
    r = r * 1103515245 + 12345;
    size_t i = (r >> 8) % mine.size();
    size_t size = 1 + (r >> 12) % ((r & 1) ? 300 : 200000);
    if (mine[i] && (r & 6) == 2) {
      mine[i] = std::realloc(mine[i], size);
    } else {
      std::free(mine[i]);
      mine[i] = std::malloc(size);
    }
    if (mine[i]) static_cast<char*>(mine[i])[0] = char(r);
    if ((r & 0x30) == 0x30) {   // hand a block to another thread, free what it handed us
      std::free(g_exchange[(r >> 20) % 64].exchange(mine[i]));
      mine[i] = nullptr;
    }
  }
  for (void* p : mine) std::free(p);
}

// vfork + execve in a function of its own: the parent's locals stay out of the shared frame.
__attribute__((noinline)) int vfork_exec(const char* exe, char** child_argv) {
  pid_t pid = vfork();
  if (pid == 0) {
    execve(exe, child_argv, environ);
    _exit(127);
  }
  int status = -1;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return -1;
  return status;
}

void watchdog(int) {
  const char msg[] = "spawn_program: hung (60 s watchdog)\n";
  (void)!write(2, msg, sizeof msg - 1);
  _exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "posix_spawn";
  if (mode == "child") return child_main();
  int n = argc > 2 ? std::atoi(argv[2]) : 100;
  std::signal(SIGALRM, watchdog);
  alarm(60);
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < 4; ++t) threads.emplace_back(churn, t * 7919 + 1);
  int ok = 0;
  char exe[4096];
  ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (len <= 0) return 1;
  exe[len] = 0;
  std::string cmd = std::string("'") + exe + "' child";
  for (int i = 0; i < n; ++i) {
    char arg0[] = "spawn_program", arg1[] = "child";
    char* child_argv[] = {arg0, arg1, nullptr};
    int status = -1;
    if (mode == "posix_spawn") {
      pid_t pid;
      if (posix_spawn(&pid, exe, nullptr, nullptr, child_argv, environ) != 0) break;
      if (waitpid(pid, &status, 0) != pid) break;
    } else if (mode == "vfork") {
      if ((status = vfork_exec(exe, child_argv)) == -1) break;
    } else if (mode == "system") {
      status = std::system(cmd.c_str());
    } else {
      std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
      return 1;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) ++ok;
    else std::fprintf(stderr, "child %d: status 0x%x\n", i, status);
  }
  g_stop = true;
  for (auto& t : threads) t.join();
  for (auto& e : g_exchange) std::free(e.exchange(nullptr));
  std::printf("%s: %d of %d children exited 0\n", mode.c_str(), ok, n);
  return ok == n ? 0 : 1;
}
