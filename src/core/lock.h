// lock.h — the allocator's only lock: a tiny spin-then-yield lock that knows its holder.
//
// Each thread counts the allocator locks it holds, so that fork() works from a signal handler that
// interrupted a slow path: the atfork prepare handler then takes no lock at all (it could deadlock on
// the interrupted thread's lock, directly or through another thread waiting for it), and the child
// resets every lock. No lock is taken on any fast path.
#pragma once
#include <atomic>
#include <sched.h>

#include "core/config.h"

namespace km {

int current_tid();   // cached per thread (heap.cpp)
extern constinit thread_local int tl_locks_held;   // allocator locks the calling thread holds

class SpinLock {
 public:
  void lock() {
    int me = current_tid();
    for (unsigned spins = 0;; ++spins) {
      int expected = 0;
      if (KM_LIKELY(holder_.compare_exchange_weak(expected, me, std::memory_order_acquire,
                                                  std::memory_order_relaxed))) {
        ++tl_locks_held;
        return;
      }
      if (spins > 64) sched_yield();
      else __builtin_ia32_pause();
    }
  }
  bool try_lock() {
    int expected = 0;
    bool got = holder_.compare_exchange_strong(expected, current_tid(), std::memory_order_acquire,
                                               std::memory_order_relaxed);
    tl_locks_held += got;
    return got;
  }
  void unlock() {
    holder_.store(0, std::memory_order_release);
    if (tl_locks_held > 0) --tl_locks_held;   // a forked child may unlock what it reset
  }
  // In a fork child only one thread exists: whatever held the lock is gone.
  void reset_in_child() { holder_.store(0, std::memory_order_relaxed); }

 private:
  std::atomic<int> holder_{0};
};

struct LockGuard {
  explicit LockGuard(SpinLock& l) : l_(l) { l_.lock(); }
  ~LockGuard() { l_.unlock(); }
  SpinLock& l_;
};

}  // namespace km
