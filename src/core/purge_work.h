// purge_work.h — what the purger finds to do, left by the layers it purges. Segments, huge blocks
// and remote stacks only count and note; they never call the purger, which is above them (purge.h).
//
// The work word is a futex word: purge_work_note() bumps it whenever memory starts to wait for its
// purge delay (free slots, cached huge blocks) or an exited thread's heap gets its first remote free,
// and wakes the purger thread if it sleeps. Lock-free: safe in any lock context and in a fork child.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace km {

// Bytes of free slots not yet purged, over all segments (segment.cpp keeps it).
extern std::atomic<size_t> g_dirty_bytes;

void purge_work_note();
// The work word now: a poll that saw this value has seen every note before it.
uint32_t purge_work_word();
// The purger thread: sleep until a note moves the word past `seen` (returns at once if it has).
void purge_work_wait(uint32_t seen);
// A fork child: the purger thread did not come along, so nobody sleeps on the word.
void purge_work_fork_child();

}  // namespace km
