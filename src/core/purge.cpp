// purge.cpp — the purge pass and the background purger thread.
//
// The purger finds its work; nobody below calls it. Segments and huge blocks count their dirty
// memory and note it in the work word (purge_work.h); the allocator's slow paths (core/entry.cpp)
// poll it. The purger thread is started on such a poll, the first time work waits in a
// process that has a second thread of its own (two heaps in use, or a free of another thread's cell): a single-threaded program never gets a thread it did
// not ask for (unshare(CLONE_NEWUSER) and some sandboxes refuse multithreaded processes). There,
// the polls run the passes: what has waited out its delay, at most once per delay, or once a
// millisecond while more than kMaxDirtyUnthreaded waits; past kMaxDirtyHard everything goes at once.
// The thread sleeps on the work word while nothing is dirty, and purges what has waited long enough.
// It holds no lock while sleeping; a pass takes the segments lock, then each segment's lock in turn.
#include "core/purge.h"

#include <atomic>
#include <cstdint>

#include "core/huge.h"
#include "core/options.h"
#include "core/purge_work.h"
#include "core/segment.h"
#include "core/sink.h"
#include "core/thread.h"
#include "platform/os.h"

namespace km {
namespace {
std::atomic<int> g_thread_state{0};     // 0 none, 1 running, -1 could not start (purge inline)
std::atomic<int64_t> g_last_pass{0};
std::atomic<int64_t> g_last_look{0};   // purge_inline's last look at the dirty bytes
std::atomic<bool> g_inline_pending{false};   // purge_inline left work for a later poll
SpinLock g_pass_lock;                   // one pass at a time; first in the fork lock order
std::atomic<int> g_pass_waiters{0};     // forks waiting for g_pass_lock (purge_pass_yield)
SpinLock g_sink_lock;                   // one sink at a time (sink.h); before g_pass_lock, never
                                        // taken by a fork: its child resets it
// Purging memory that is about to be reused costs a page fault per page on its next use (a burst
// that frees 250 MiB and allocates it again 5 ms later), so only memory past its delay is purged,
// more often while much waits; past the hard cap, all of it.
constexpr size_t kMaxDirtyUnthreaded = size_t(16) << 20;
constexpr size_t kMaxDirtyHard = size_t(1) << 30;

// The purger's stack: a pass walks lists and calls the platform, nothing recursive or big.
constexpr size_t kPurgerStack = 64 * 1024;

// Is anything left to purge later: a dirty free slot anywhere, or a cached huge block?
bool work_left() {
  if (huge_cached_bytes() > 0) return true;
  LockGuard g(g_segments_lock);
  for (Segment* s = g_segments; s; s = s->next)
    if (__atomic_load_n(&s->dirty_slots, __ATOMIC_RELAXED)) return true;
  return false;
}

size_t purge_pass(int64_t cutoff_ms) {
  size_t purged = 0;
  {
    LockGuard g(g_segments_lock);
    for (Segment* s = g_segments; s; s = s->next)
      if (__atomic_load_n(&s->dirty_slots, __ATOMIC_RELAXED)) purged += segment_purge(s, cutoff_ms);
  }
  purged += huge_purge_expired(cutoff_ms);
  g_last_pass.store(os::now_ms(), std::memory_order_relaxed);
  return purged;
}

[[noreturn]] void purger_main() {
  for (;;) {
    bool noted = purge_work_take();
    uint32_t seen = purge_work_word();
    long delay = option(Opt::purge_delay_ms);
    purge_expired(os::now_ms() - delay);
    heaps_drain_abandoned();
    bool watching;
    {
      LockGuard sinking(g_sink_lock);
      LockGuard pass(g_pass_lock);   // let go between the sink's steps (purge_pass_yield)
      watching = heaps_sink_idle(delay);
    }
    bool pending = watching || work_left();
    // Only an indefinite wait needs waking: a timed one comes back within the delay by itself, and
    // waking it on every retired page would cost a syscall and a context switch each time.
    if (pending) {
      os::sleep_ms(delay / 2 + 1);
      continue;
    }
    // Notes came in while it slept: more are likely to (threads that come and go, each freeing into
    // the heap of one that exited). One more timed sleep takes them without a wake-up from the
    // noting thread, a futex call on the program's side each time; a sleep with no note ends it.
    if (noted && delay > 0) {
      os::sleep_ms(delay);
      continue;
    }
    purge_work_wait(seen);
    // Woken by a note. What it noted waits out the delay anyway (a free slot, a cached block) or may
    // (frees into an exited thread's heap come back within the delay): sleep first, so that a program
    // whose threads come and go, each freeing into the heap of one that exited, wakes this thread
    // once a delay and not once a thread (thread-churn: a futex call and two context switches each).
    if (delay > 0) os::sleep_ms(delay);
  }
}

void start_thread() {
  int expected = 0;
  if (!g_thread_state.compare_exchange_strong(expected, 1)) return;
  // All signals blocked in it: the purger must never take the program's signals.
  if (!os::start_thread(purger_main, "kmalloc-purge", kPurgerStack)) g_thread_state.store(-1);
}

// No thread: purge what waited out the delay (see kMaxDirtyUnthreaded), all of it past kMaxDirtyHard.
// Only try the pass lock: the caller may hold a lock that comes after it in the fork order.
// The dirty bytes are a walk of the segments (segments_dirty_bytes), taken at most once a millisecond.
// Work left for a later poll stays pending (g_inline_pending) until a pass leaves nothing to purge:
// a program that frees a lot and then only reuses its current pages notes nothing new, and its
// memory would otherwise wait for the next page retired.
void purge_inline(long delay) {
  int64_t now = os::now_ms();
  int64_t since = now - g_last_pass.load(std::memory_order_relaxed);
  long floor = delay < 1 ? delay : 1;
  g_inline_pending.store(true, std::memory_order_relaxed);
  if (since < floor || now == g_last_look.load(std::memory_order_relaxed)) return;
  if (!g_pass_lock.try_lock()) return;
  g_last_look.store(now, std::memory_order_relaxed);
  size_t dirty = segments_dirty_bytes();
  bool too_much = dirty > kMaxDirtyHard;
  if (too_much || since >= (dirty > kMaxDirtyUnthreaded ? floor : delay))
    purge_pass(too_much ? INT64_MAX : now - delay);
  g_inline_pending.store(work_left(), std::memory_order_relaxed);
  g_pass_lock.unlock();
}
}  // namespace

size_t purge_expired(int64_t cutoff_ms) {
  LockGuard pass(g_pass_lock);
  return purge_pass(cutoff_ms);
}

void purge_sink_all() {
  LockGuard sinking(g_sink_lock);
  LockGuard pass(g_pass_lock);
  heaps_sink_all();
}

void purge_pass_yield() {
  if (g_pass_waiters.load(std::memory_order_acquire) == 0) return;
  g_pass_lock.unlock();
  while (g_pass_waiters.load(std::memory_order_acquire) != 0) os::yield();   // it has the lock
  g_pass_lock.lock();
}

void purge_poll(bool threaded) {
  int state = g_thread_state.load(std::memory_order_relaxed);
  if (state == 1) return;   // the thread runs: the note woke it
  // Nothing new since the last look, and nothing left from it.
  if (!purge_work_take() && !g_inline_pending.load(std::memory_order_relaxed)) return;
  long delay = option(Opt::purge_delay_ms);
  if (delay < 0) return;   // never
  if (state == 0 && option(Opt::purge_thread) && (threaded || live_heaps() >= 2)) {
    start_thread();
    if (g_thread_state.load(std::memory_order_relaxed) == 1) return;
  }
  purge_inline(delay);
}

// A sink under way lets the lock go between its steps when a fork waits (purge_pass_yield), so a
// fork waits for one step, not for the whole sink.
void purge_fork_prepare() {
  g_pass_waiters.fetch_add(1, std::memory_order_acq_rel);
  g_pass_lock.lock();
  g_pass_waiters.fetch_sub(1, std::memory_order_acq_rel);
}
void purge_fork_parent() { g_pass_lock.unlock(); }
void purge_fork_child(bool whole) {
  g_pass_lock.reset_in_child();
  g_sink_lock.reset_in_child();
  g_pass_waiters.store(0, std::memory_order_relaxed);
  sink_fork_child(whole);   // a sink the purger had under way (it paused between two steps)
  purge_work_fork_child();
  if (g_thread_state.load() == 1) g_thread_state.store(0);   // the thread did not come along
}

}  // namespace km
