// thread.cpp — thread life (thread.h): set-up, exit, the orphan heap.
//
// Lock order: the pool (pool.h) before g_orphan_lock. The orphan heap never adopts pooled heaps
// (heap.cpp: heap_reclaim): it runs under g_orphan_lock, which comes after the pool lock.
#include "core/thread.h"

#include <atomic>

#include "core/heap.h"
#include "core/pool.h"
#include "core/purge_work.h"
#include "core/runtime.h"
#include "platform/os.h"

namespace km {
namespace {
std::atomic<int> g_live_heaps{0};      // heaps a thread of this process is using now
SpinLock g_orphan_lock;                // guards g_orphan
Heap* g_orphan = nullptr;              // serves threads that allocate after their heap was pooled
os::ThreadKey g_thread_key;
std::atomic<bool> g_key_ready{false};

// Key destructor: the thread is exiting. Give back what can be given, and pool the heap.
void thread_exit(void* arg) {
  auto* h = static_cast<Heap*>(arg);
  // First the outgoing batch (remote.h): cells this thread freed to other heaps go to their owners,
  // so a pooled heap never holds one; then its own remote frees and empty pages.
  heap_collect(h, true);
  tl_heap = &g_dead_heap;
  g_live_heaps.fetch_sub(1, std::memory_order_relaxed);
  h->remote.abandoned.store(true, std::memory_order_seq_cst);
  pool_put(h, h->segments != nullptr);
  // Frees that came in before it was marked abandoned noted nothing: the purger drains them.
  if (remote_pending(&h->remote)) purge_work_note();
}

// The calling thread's first slow path: adopt a heap from the pool, or make one.
Heap* heap_acquire() {
  runtime_init();
  Heap* h = pool_take();
  if (h) h->remote.abandoned.store(false, std::memory_order_relaxed);
  else h = heap_new();
  if (!h) return nullptr;
  tl_heap = h;
  g_live_heaps.fetch_add(1, std::memory_order_relaxed);
  if (!g_key_ready.load(std::memory_order_acquire)) {
    static SpinLock key_lock;
    LockGuard g(key_lock);
    if (!g_key_ready.load(std::memory_order_relaxed)) {
      os::thread_key_create(&g_thread_key, thread_exit);
      g_key_ready.store(true, std::memory_order_release);
    }
  }
  os::thread_key_set(g_thread_key, h);
  return h;
}

void drain_one(Heap* h) {
  if (remote_pending(&h->remote)) heap_collect(h, true);
}
}  // namespace

Heap* heap_for_thread(SpinLock** held) {
  *held = nullptr;
  Heap* h = tl_heap;
  if (KM_UNLIKELY(h == &g_empty_heap)) return heap_acquire();
  if (KM_UNLIKELY(h == &g_dead_heap)) {   // allocating after thread exit (late destructors)
    g_orphan_lock.lock();
    if (!g_orphan) g_orphan = heap_new(true);
    if (!g_orphan) {
      g_orphan_lock.unlock();
      return nullptr;
    }
    *held = &g_orphan_lock;
    return g_orphan;
  }
  return h;
}

int live_heaps() { return g_live_heaps.load(std::memory_order_relaxed); }

void heaps_drain_abandoned() { pool_each(drain_one); }

void threads_fork_prepare() {
  pool_fork_prepare();
  g_orphan_lock.lock();
}

void threads_fork_parent() {
  g_orphan_lock.unlock();
  pool_fork_parent();
}

void threads_fork_child(bool whole) {
  g_orphan_lock.reset_in_child();
  pool_fork_child(whole);
  if (!whole) g_orphan = nullptr;   // it may be mid-update: abandon it
  // The forking thread's heap may be halfway through a malloc or free (fork from a signal handler
  // that interrupted one), so the child sets it aside and starts a fresh heap on its next malloc.
  // Like the heaps of threads that do not exist in the child, it keeps its memory (shared
  // copy-on-write with the parent; the child usually execs), and cells of it that the child frees go
  // to its remote queue, harmlessly.
  if (tl_heap != &g_dead_heap) tl_heap = &g_empty_heap;
  g_live_heaps.store(0, std::memory_order_relaxed);   // none of the parent's heaps is in use here
}

}  // namespace km
