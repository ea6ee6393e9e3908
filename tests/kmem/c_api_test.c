/* kmem.h from C: every declaration compiles as C, and a few calls work without any C++. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kmalloc.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #c); return 1; } } while (0)

int main(void) {
  kmptr p = kmheapao(32);
  CHECK(p.kind == kmkind_heap && p.ref != NULL);
  kmtaint(&p);
  CHECK(p.shred == kmshred_yes);
  kmfree(p);

  kmarena *a = kmarenai(4096);
  kmpool *pool = kmpooli((kmcell *)a, 48, 10);
  CHECK(pool != NULL);
  void *cell = kmpoolz(pool);
  CHECK(cell != NULL);
  kmpoolf(cell);
  void *root = kmtreea((kmcell *)a, NULL, 16);
  CHECK(kmtreea(NULL, root, 16) != NULL);
  kmtreef(root);
  kmpoolx(pool);
  kmarenax(a);

  kmfifo *q = kmfifoi(kmfifop2(100), 0);
  char buf[16];
  size_t n = 0;
  CHECK(kmfifopush(q, "hi", 2) == 0);
  CHECK(kmfifoshift(q, buf, &n, sizeof buf) == 0 && n == 2 && memcmp(buf, "hi", 2) == 0);
  CHECK(kmfifoshift(q, buf, &n, sizeof buf) == ENOENT);
  kmfifox(q);

  void *mark = kmlini();
  CHECK(kmlinz(100) == mark);
  CHECK(kmlinx(mark) == mark);
  errno = 0;
  CHECK(kmpooli(NULL, 0, 1) == NULL && errno == EINVAL);
  return 0;
}
