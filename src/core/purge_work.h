// purge_work.h — what the purger finds to do, left by the layers it purges. Segments, huge blocks
// and remote stacks only count and note; they never call the purger, which is above them (purge.h).
//
// purge_work_note() says that memory started to wait for its purge delay (free slots, cached huge
// blocks) or that an exited thread's heap got its first remote free: it sets the noted flag (once
// until someone takes it) and wakes the purger thread if it sleeps on the work word (a futex word).
// Lock-free: safe in any lock context and in a fork child.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace km {

void purge_work_note();
// Take the noted flag: true if something was noted since the last take (the caller then looks at
// everything: each note's work is visible to it).
bool purge_work_take();
// The work word now (the purger reads it before a pass, then sleeps until it moves).
uint32_t purge_work_word();
// The purger thread: sleep until a note moves the word past `seen` (returns at once if it has).
void purge_work_wait(uint32_t seen);
// A fork child: the purger thread did not come along, so nobody sleeps on the word.
void purge_work_fork_child();

}  // namespace km
