// lock.h — the allocator's only lock: a tiny spin-then-yield lock.
//
// Each thread counts the allocator locks it holds or is about to take, so that fork() works from a
// signal handler that interrupted a slow path: the atfork prepare handler then takes no lock at all
// (it could deadlock on the interrupted thread's lock, directly or through another thread waiting
// for it), and the child abandons every structure a lock guards (runtime.cpp). The count goes up
// before a lock is tried and down after it is released, so a signal at any instruction in between
// sees a non-zero count: the worst a window can do is make a fork look interrupted when it was not,
// which is safe. No lock is taken on any fast path.
#pragma once
#include <atomic>

#include "core/config.h"
#include "platform/os.h"

namespace km {

// Allocator locks the calling thread holds or is about to take (defined here: the lock owns it).
inline constinit thread_local int tl_locks_held = 0;

class SpinLock {
 public:
  // Critical sections are a few list operations: a holder that is running releases within a few
  // dozen pauses; past that it was likely preempted, so give it the CPU.
  static constexpr unsigned kSpinsBeforeYield = 64;

  void lock() {
    ++tl_locks_held;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);   // counted before the lock can be ours
    for (unsigned spins = 0;; ++spins) {
      int expected = 0;
      if (KM_LIKELY(holder_.compare_exchange_weak(expected, 1, std::memory_order_acquire,
                                                  std::memory_order_relaxed)))
        return;
      if (spins > kSpinsBeforeYield) os::yield();
      else os::cpu_relax();
    }
  }
  bool try_lock() {
    ++tl_locks_held;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    int expected = 0;
    bool got = holder_.compare_exchange_strong(expected, 1, std::memory_order_acquire,
                                               std::memory_order_relaxed);
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    if (!got) --tl_locks_held;
    return got;
  }
  void unlock() {
    holder_.store(0, std::memory_order_release);
    __atomic_signal_fence(__ATOMIC_SEQ_CST);   // uncounted only once it is released
    if (tl_locks_held > 0) --tl_locks_held;    // a forked child may unlock what it reset
  }
  // In a fork child only one thread exists: whatever held the lock is gone.
  void reset_in_child() { holder_.store(0, std::memory_order_relaxed); }

 private:
  std::atomic<int> holder_{0};   // 1 while held
};

struct LockGuard {
  explicit LockGuard(SpinLock& l) : l_(l) { l_.lock(); }
  ~LockGuard() { l_.unlock(); }
  SpinLock& l_;
};

}  // namespace km
