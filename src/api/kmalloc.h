/* kmalloc.h — the public C API of kmalloc.
 *
 * Linking -lkmalloc (or LD_PRELOAD=libkmalloc.so) makes malloc, free, ... and C++ new/delete
 * kmalloc's. The km_* names below are the same allocator under names that never collide with libc,
 * for programs that want to call kmalloc explicitly beside another malloc. The explicit allocators
 * (kmem: lin, heap, pool, ref, tree, arena, fifo) are declared in kmem.h, included at the end.
 *
 * Semantics follow glibc: NULL + errno = ENOMEM on failure, EINVAL for a bad alignment.
 */
#ifndef KMALLOC_H
#define KMALLOC_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KMALLOC_VERSION_MAJOR 0
#define KMALLOC_VERSION_MINOR 1
#define KMALLOC_VERSION_PATCH 0

void  *km_malloc(size_t size);
void  *km_calloc(size_t count, size_t size);
void  *km_realloc(void *p, size_t size);
void  *km_reallocarray(void *p, size_t count, size_t size);
void   km_free(void *p);
/* C23 free_sized / free_aligned_sized: free p, which was allocated with `size` bytes (and, for the
 * aligned form, by aligned_alloc with `alignment`). Like km_free; with KMALLOC_SECURE=1 a size or
 * alignment that does not match the block stops the program ("size mismatch"). */
void   km_free_sized(void *p, size_t size);
void   km_free_aligned_sized(void *p, size_t alignment, size_t size);
int    km_posix_memalign(void **out, size_t alignment, size_t size);
void  *km_aligned_alloc(size_t alignment, size_t size);
void  *km_memalign(size_t alignment, size_t size);
void  *km_valloc(size_t size);
void  *km_pvalloc(size_t size);
size_t km_usable_size(const void *p);
/* Is p a live block that kmalloc handed out (small cell or large block)? O(1), never crashes. */
int    km_owns(const void *p);
/* Return free memory to the OS now (empty pages, cached large blocks). 1 if anything was released. */
int    km_trim(size_t pad);
/* Print the statistics summary (the same as KMALLOC_STATS=1 at exit) on fd 2. */
void   km_stats_print(void);

/* Counters for programs and tests; bytes unless named *_count. A snapshot, not atomic as a whole. */
typedef struct km_stats {
  size_t in_use;          /* bytes in blocks handed out and not freed (cells: cell size); a block
                             freed by another thread counts as free at once. Exact while no thread
                             allocates or frees, even as the purger drains (km_stats_get waits up
                             to 100 ms for a collection of remote frees to end) */
  size_t peak_in_use;     /* highest in_use seen: sampled on the slow path whenever the pages and
                             large blocks kmalloc holds have grown by a sixteenth since the last
                             sample, and at each read; so it can miss a short peak by about that */
  size_t mapped;          /* bytes mapped from the OS right now (segments + large blocks) */
  size_t resident;        /* kmalloc's own resident bytes: segments (mincore) + huge mappings */
  size_t metadata;        /* bytes of allocator metadata (segment headers, heaps, registries) */
  size_t large_in_use;    /* bytes in live blocks above the largest lane (span_bytes + huge_bytes) */
  size_t large_cached;    /* bytes of freed huge mappings kept for reuse */
  size_t mmap_count;      /* mmap calls made */
  size_t munmap_count;    /* munmap calls made */
  size_t purge_count;     /* purge (MADV_DONTNEED) calls made */
  size_t purged;          /* bytes purged */
  size_t heaps;           /* thread heaps created (heaps are reused after thread exit) */
  size_t segments;        /* segments mapped right now */
  size_t span_count;      /* live spans: large blocks in runs of segment slots */
  size_t span_bytes;      /* their usable bytes */
  size_t huge_count;      /* live huge blocks: a mapping of their own each */
  size_t huge_bytes;      /* their usable bytes */
  size_t dirty;           /* bytes of free segment slots not yet purged (resident, reusable) */
  size_t process_resident;/* resident set of the whole process, from /proc/self/statm */
} km_stats;
void km_stats_get(km_stats *out);

#ifdef __cplusplus
}
#endif

#include "kmem.h"

#endif /* KMALLOC_H */
