// meta.h — memory for the allocator's own long-lived structures (heaps), bump-allocated from mapped
// chunks and never freed (heaps are reused, not released).
#pragma once
#include <cstddef>

namespace km {
void* meta_alloc(size_t size);   // zeroed, 64-byte aligned; nullptr if the OS refuses
void meta_fork_prepare();
void meta_fork_parent();
void meta_fork_child(bool whole);   // whole: prepare took the lock
}  // namespace km
