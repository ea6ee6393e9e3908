// large.h — the large-block fallback: requests above the largest lane (or aligned beyond a page) are
// mapped directly, recorded in a registry (so free can tell them from foreign pointers in O(1)), and
// grown or shrunk with mremap. Freed blocks are kept in a small cache for reuse, bounded in bytes
// (KMALLOC_LARGE_CACHE_MB) and in time (KMALLOC_PURGE_DELAY_MS): re-faulting fresh pages is what makes
// large-block churn slow.
#pragma once
#include <cstddef>
#include <cstdint>

namespace km {
// size > 0; align a power of two (<= page size means page-aligned). zero: the block must read as
// zeros (fresh mappings already do). nullptr when the OS refuses; errno is left to the caller.
void* large_alloc(size_t size, size_t align, bool zero);
bool large_free(void* p);                       // false if p is not a large block
size_t large_usable_size(const void* p);        // 0 if p is not a large block
// Resize a large block (new_size > 0). nullptr on failure, and the block is left intact.
void* large_realloc(void* p, size_t new_size);
size_t large_purge_expired(int64_t cutoff_ms);  // unmap cached blocks freed at or before the cutoff
size_t large_cached_bytes();
void large_fork_prepare();
void large_fork_parent();
void large_fork_child();
}  // namespace km
