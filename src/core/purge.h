// purge.h — giving free memory back to the OS: after KMALLOC_PURGE_DELAY_MS, from a background thread
// when the program goes quiet (or on allocator calls when there is no such thread), and at once on
// malloc_trim(0). What waits is noted in purge_work.h by the layers below; this one polls it.
#pragma once
#include <cstddef>
#include <cstdint>

namespace km {
// The allocator's slow paths call this: start the purger, or purge inline, if work was noted.
// threaded: the caller knows that the process has, or had, a second thread of its own (a free of a
// cell another thread's heap owns), so the purger may start even if only one heap is in use.
void purge_poll(bool threaded = false);
// Purge everything freed at or before cutoff_ms (INT64_MAX: everything). Returns bytes released.
size_t purge_expired(int64_t cutoff_ms);
// malloc_trim: give back at once what other threads freed into live heaps (sink.h).
void purge_sink_all();
// Between two steps of a long job under the pass lock (a sink): if a fork waits for the lock, let
// it take the lock first.
void purge_pass_yield();
void purge_fork_prepare();
void purge_fork_parent();
void purge_fork_child(bool whole);   // whole: prepare took every lock
}  // namespace km
