// lock.h — the allocator's only lock: a tiny spin-then-yield lock that knows its holder.
//
// Knowing the holder (the kernel thread id) lets fork() work from a signal handler that interrupted
// a slow path: the atfork prepare handler skips a lock the forking thread already holds instead of
// deadlocking on itself, and the child resets every lock. No lock is taken on any fast path.
#pragma once
#include <atomic>
#include <sched.h>

#include "core/config.h"

namespace km {

int current_tid();   // cached per thread (heap.cpp)

class SpinLock {
 public:
  void lock() {
    int me = current_tid();
    for (unsigned spins = 0;; ++spins) {
      int expected = 0;
      if (KM_LIKELY(holder_.compare_exchange_weak(expected, me, std::memory_order_acquire,
                                                  std::memory_order_relaxed)))
        return;
      if (spins > 64) sched_yield();
      else __builtin_ia32_pause();
    }
  }
  bool try_lock() {
    int expected = 0;
    return holder_.compare_exchange_strong(expected, current_tid(), std::memory_order_acquire,
                                           std::memory_order_relaxed);
  }
  void unlock() { holder_.store(0, std::memory_order_release); }
  // For the atfork prepare handler: take the lock unless this thread holds it already.
  // Returns whether it was taken (and so must be released in the parent).
  bool lock_for_fork() {
    if (holder_.load(std::memory_order_relaxed) == current_tid()) return false;
    lock();
    return true;
  }
  // In the fork child only one thread exists: whatever held the lock is gone.
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
