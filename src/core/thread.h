// thread.h — a thread's life as the allocator sees it: its heap on the first slow path (adopted from
// the pool or made), the key destructor that pools it at exit, the orphan heap for allocations after
// that (late destructors), and the purger's drain of exited threads' remote frees.
#pragma once
#include "core/lock.h"

namespace km {

struct Heap;

// The calling thread's heap, set up on its first call; nullptr when that fails. A thread past its
// exit (a late destructor) gets the shared orphan heap with *held locked: unlock it after use.
Heap* heap_for_thread(SpinLock** held);
// Number of heaps that threads of this process use now (the purger starts only at two or more).
int live_heaps();
// Collect the remote frees of heaps whose thread has exited, and give back what they free (the
// purger; malloc_trim).
void heaps_drain_abandoned();
void threads_fork_prepare();
void threads_fork_parent();
void threads_fork_child(bool whole);

}  // namespace km
