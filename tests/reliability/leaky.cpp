// A program linked with -lkmalloc with two bugs for valgrind's memcheck to find: a heap block
// written one byte past its end, and a block that is never freed (definitely lost).
#include <cstdio>
#include <cstdlib>
#include <cstring>

int main() {
  char* volatile leak = static_cast<char*>(malloc(1000));
  std::memset(leak, 'x', 1000);
  leak = nullptr;                                   // 1000 bytes definitely lost
  char* p = static_cast<char*>(malloc(10));
  std::memset(p, 'y', 10);
  volatile char* q = p;
  q[10] = 'z';                                      // invalid write of size 1
  free(p);
  std::puts("leaky: done");
  return 0;
}
