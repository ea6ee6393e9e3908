// A single-threaded program for the preload tests: it frees enough to make kmalloc schedule purges,
// forks, and the child does the same. Neither process may gain a thread (unshare(CLONE_NEWUSER) and
// sandboxes refuse threaded processes). Prints "threads: PARENT CHILD" and exits 0 if both are 1.
#include <cstdio>
#include <cstdlib>
#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

static int thread_count() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/task")) {
    while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
  }
  return n;
}

static void churn() {
  static void* blocks[20000];
  for (void*& p : blocks) {
    p = std::malloc(1000);
    static_cast<char*>(p)[0] = 1;
  }
  for (void* p : blocks) std::free(p);   // empties pages: purges get scheduled
  void* big = std::malloc(8 << 20);       // and a large block goes to the cache
  std::free(big);
  usleep(50 * 1000);                      // longer than the purge delay
  std::free(std::malloc(100));
}

int main() {
  churn();
  int parent = thread_count();
  int fds[2];
  if (pipe(fds) != 0) return 2;
  pid_t pid = fork();
  if (pid == 0) {
    churn();
    int child = thread_count();
    (void)!write(fds[1], &child, sizeof child);
    _exit(0);
  }
  int child = -1, status = 0;
  (void)!read(fds[0], &child, sizeof child);
  waitpid(pid, &status, 0);
  std::printf("threads: %d %d\n", parent, child);
  return parent == 1 && child == 1 ? 0 : 1;
}
