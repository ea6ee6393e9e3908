// A program linked with -lkmalloc that allocates and exits. tools_test runs it as a setuid (or
// setgid) copy with KMALLOC_VERBOSE=1 and friends: it must print nothing there.
#include <cstdio>
#include <cstdlib>
#include <cstring>

int main() {
  void* volatile p = malloc(100);
  std::memset(p, 1, 100);
  free(p);
  return 0;
}
