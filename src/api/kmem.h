/* kmem.h — kmalloc's explicit allocators, after libk's kmem (method + action letter naming).
 *
 *   lin   per-thread linear stack: kmlini mark, kmlina/kmlinz bump, kmlinx release to a mark
 *   heap  the lane allocator (kmheapa == malloc)
 *   ref   reference-counted cells (atomic counts)
 *   pool  n fixed-size cells with O(1) alloc/free; kmpoolf finds the pool from the cell
 *   tree  hierarchical: freeing a node frees every descendant
 *   arena small blocks carved linearly from blocks of blocksz; reset rewinds them
 *   fifo  one power-of-two ring of chunks freed in allocation order (2-byte length cookies)
 *
 * Wherever a `kmcell *src` is taken, NULL means the heap and a pool or arena (cast to kmcell *) means
 * drawing from it. Bad input gives errno and a NULL/-1 (or errno-valued) result, never a crash.
 */
#ifndef KMALLOC_KMEM_H
#define KMALLOC_KMEM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum kmkind { kmkind_none, kmkind_lin, kmkind_heap, kmkind_pool, kmkind_ref, kmkind_tree,
                      kmkind_arena, kmkind_fifo } kmkind;
typedef enum kmshred_flag { kmshred_no = 0, kmshred_yes = 1 } kmshred_flag; /* the seed's "enum kmshred" */
typedef struct kmcell kmcell;                 /* the header every source and managed cell starts with */
typedef struct kmptr { kmkind kind; kmshred_flag shred; void *ref; kmcell *cell; } kmptr;
typedef struct kmpool kmpool;
typedef struct kmarena kmarena;
typedef struct kmfifo kmfifo;

void  kmfree(kmptr p);            /* free, downref or ignore, as the kind says */
void  kmshred(kmptr p);           /* same, zeroing the contents if it deallocates */
kmptr kmstat(void *raw);          /* == (kmptr){kmkind_none, kmshred_no, raw, NULL} */
void  kmtaint(kmptr *p);          /* shred when freed */
void  kmzero(void *p, size_t n);  /* a zeroing the compiler cannot remove */
void  kmozero(kmptr p);
void  kmcopy(void *dst, const void *src, size_t n);
kmptr kmdup(kmptr p);             /* copy, allocated as a sibling of the original (same kind and source) */

void *kmlini(void);  void *kmlina(size_t n);  void *kmlinz(size_t n);  void *kmlinx(void *mark);
void *kmheapa(size_t n);  void *kmheapz(size_t n);  kmptr kmheapao(size_t n);  kmptr kmheapzo(size_t n);
void  kmheapf(void *p);   void  kmheaps(void *p);
void *kmrefa(kmcell *src, size_t n);  void *kmrefz(kmcell *src, size_t n);
kmptr kmrefao(kmcell *src, size_t n); kmptr kmrefzo(kmcell *src, size_t n);
void *kmrefu(void *p);  void kmreff(void *p);  void kmrefs(void *p);
kmpool *kmpooli(kmcell *src, size_t cellsz, size_t n);  void kmpoolx(kmpool *pool);
void *kmpoola(kmpool *pool);  void *kmpoolz(kmpool *pool);
kmptr kmpoolao(kmpool *pool); kmptr kmpoolzo(kmpool *pool);
void  kmpoolf(void *cell);    void  kmpools(void *cell);
void *kmtreea(kmcell *src, void *parent, size_t n);  void *kmtreez(kmcell *src, void *parent, size_t n);
kmptr kmtreeao(kmcell *src, void *parent, size_t n); kmptr kmtreezo(kmcell *src, void *parent, size_t n);
void  kmtreef(void *node);
kmarena *kmarenai(size_t blocksz);   void kmarenax(kmarena *a);   void kmarenar(kmarena *a);
void *kmarenaa(kmarena *a, size_t n); void *kmarenan(kmarena *a, size_t n); void *kmarenaz(kmarena *a, size_t n);
void  kmarenaf(kmarena *a, void *p);
kmfifo *kmfifoi(size_t capacity, unsigned flags);  void kmfifox(kmfifo *q);
int   kmfifopush(kmfifo *q, const void *data, size_t n);
int   kmfifoshift(kmfifo *q, void *buf, size_t *n, size_t bufsize);
void *kmfifoa(kmfifo *q, size_t n);  int kmfifof(kmfifo *q, void *p);  size_t kmfifop2(size_t n);

#ifdef __cplusplus
}
#endif

#endif /* KMALLOC_KMEM_H */
