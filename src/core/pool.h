// pool.h — heaps whose thread has exited, waiting for a new thread or for a running heap to adopt
// what they still own. Guarded by one lock (second in the fork order, after the purge pass); a heap
// in the pool is touched by nobody but the holder of that lock or the thread that took it out.
#pragma once
#include "core/config.h"

namespace km {

struct Heap;

// An exited thread's heap (owns: it still owns segments; the pool remembers that some heap does).
void pool_put(Heap* h, bool owns);
// An empty heap for a new thread (nullptr when the pool has none). Heaps that still own memory stay
// pooled: a new thread that took one whole would own all of it, and a thread that then idles would
// keep it (frees of its cells wait on its remote stack until its next slow path); pooled, their
// remote frees are drained by the purger and their pages adopted when a running heap needs one.
Heap* pool_take();
// A heap that still owns segments, for a running heap to adopt them (nullptr when none does).
Heap* pool_take_owning();
// Call fn on every pooled heap, with the pool locked (the purger drains their remote frees).
void pool_each(void (*fn)(Heap*));
void pool_fork_prepare();
void pool_fork_parent();
void pool_fork_child(bool whole);   // whole: prepare took the lock; otherwise the pool is abandoned

}  // namespace km
