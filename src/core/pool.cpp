// pool.cpp — the pool of exited threads' heaps (pool.h).
#include "core/pool.h"

#include <atomic>

#include "core/heap.h"
#include "core/lock.h"

namespace km {
namespace {
SpinLock g_pool_lock;                          // guards g_pool and every heap in it
Heap* g_pool = nullptr;                        // through Heap::pool_next
std::atomic<bool> g_pool_owns{false};          // some pooled heap may still own segments
}  // namespace

void pool_put(Heap* h, bool owns) {
  LockGuard g(g_pool_lock);
  h->pool_next = g_pool;
  g_pool = h;
  if (owns) g_pool_owns.store(true, std::memory_order_relaxed);
}

Heap* pool_take() {
  LockGuard g(g_pool_lock);
  for (Heap** link = &g_pool; *link; link = &(*link)->pool_next) {
    if ((*link)->segments == nullptr) {
      Heap* h = *link;
      *link = h->pool_next;
      h->pool_next = nullptr;
      return h;
    }
  }
  return nullptr;
}

Heap* pool_take_owning() {
  if (!g_pool_owns.load(std::memory_order_relaxed)) return nullptr;   // the common case: no lock
  LockGuard g(g_pool_lock);
  for (Heap** link = &g_pool; *link; link = &(*link)->pool_next) {
    if ((*link)->segments) {
      Heap* h = *link;
      *link = h->pool_next;
      h->pool_next = nullptr;
      return h;
    }
  }
  g_pool_owns.store(false, std::memory_order_relaxed);
  return nullptr;
}

void pool_each(void (*fn)(Heap*)) {
  LockGuard g(g_pool_lock);
  for (Heap* h = g_pool; h; h = h->pool_next) fn(h);
}

void pool_fork_prepare() { g_pool_lock.lock(); }
void pool_fork_parent() { g_pool_lock.unlock(); }
void pool_fork_child(bool whole) {
  g_pool_lock.reset_in_child();
  if (!whole) g_pool = nullptr;   // it may be mid-update: abandon it (its memory stays mapped)
}

}  // namespace km
