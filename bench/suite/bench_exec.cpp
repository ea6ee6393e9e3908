// bench-exec — run one program and measure it: wall time, peak RSS, CPU time, page faults.
//
// Usage: bench-exec [--preload LIB] [--timeout SECONDS] [--out FILE] -- PROGRAM ARGS...
// Writes one line "wall_s=... maxrss_kb=... user_s=... sys_s=... minflt=... majflt=... status=..."
// to FILE (default stderr). status is the exit code, or 128+signal, or 124 on timeout.
//
// Why a helper and not the Python runner's own fork: Linux carries the parent's peak RSS into the
// child's ru_maxrss across fork+exec (exec records the old mm's high-water mark), so a 15 MB Python
// parent would put a 15 MB floor under every measurement. This helper is small and touches almost no
// memory, so the child's peak is its own. LD_PRELOAD is set only in the child, after fork, so the
// helper itself always runs on libc's malloc. Uses no C++ library, only libc.
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static double now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

static volatile sig_atomic_t g_timed_out = 0;
static void on_alarm(int) { g_timed_out = 1; }

int main(int argc, char** argv) {
  const char* preload = nullptr;
  const char* out = nullptr;
  int timeout = 0;
  int i = 1;
  for (; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--")) {
      ++i;
      break;
    }
    if (!std::strcmp(argv[i], "--preload") && i + 1 < argc) {
      preload = argv[++i];
    } else if (!std::strcmp(argv[i], "--timeout") && i + 1 < argc) {
      timeout = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--out") && i + 1 < argc) {
      out = argv[++i];
    } else {
      std::fprintf(stderr, "bench-exec: bad argument %s\n", argv[i]);
      return 64;
    }
  }
  if (i >= argc) {
    std::fprintf(stderr, "usage: bench-exec [--preload LIB] [--timeout S] [--out FILE] -- PROGRAM ARGS...\n");
    return 64;
  }

  const double t0 = now();
  const pid_t pid = fork();
  if (pid < 0) {
    std::perror("bench-exec: fork");
    return 71;
  }
  if (pid == 0) {
    if (preload && *preload) setenv("LD_PRELOAD", preload, 1);
    else unsetenv("LD_PRELOAD");
    execvp(argv[i], argv + i);
    std::fprintf(stderr, "bench-exec: cannot run %s: %s\n", argv[i], std::strerror(errno));
    _exit(127);
  }

  struct sigaction sa{};
  sa.sa_handler = on_alarm;  // no SA_RESTART: wait4 returns EINTR when the alarm fires
  sigaction(SIGALRM, &sa, nullptr);
  if (timeout > 0) alarm(static_cast<unsigned>(timeout));

  int st = 0;
  rusage ru{};
  for (;;) {
    if (wait4(pid, &st, 0, &ru) == pid) break;
    if (errno != EINTR) {
      std::perror("bench-exec: wait4");
      return 71;
    }
    if (g_timed_out) {
      kill(pid, SIGKILL);
      g_timed_out = 0;
      timeout = -1;
    }
  }
  const double wall = now() - t0;
  int status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  if (timeout < 0) status = 124;

  FILE* f = out ? std::fopen(out, "w") : stderr;
  if (!f) {
    std::perror("bench-exec: output file");
    return 71;
  }
  std::fprintf(f, "wall_s=%.6f maxrss_kb=%ld user_s=%.6f sys_s=%.6f minflt=%ld majflt=%ld status=%d\n", wall,
               ru.ru_maxrss, static_cast<double>(ru.ru_utime.tv_sec) + ru.ru_utime.tv_usec * 1e-6,
               static_cast<double>(ru.ru_stime.tv_sec) + ru.ru_stime.tv_usec * 1e-6, ru.ru_minflt, ru.ru_majflt,
               status);
  if (out) std::fclose(f);
  return 0;
}
