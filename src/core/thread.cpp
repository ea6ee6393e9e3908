// thread.cpp — thread life (thread.h): set-up, exit, the orphan heap, the heaps a fork child keeps.
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
  {
    HeapBusy busy(h);
    heap_collect(h, true);
  }
  tl_heap = &g_dead_heap;
  heap_set_owner(h, reinterpret_cast<uintptr_t>(h));   // before the next thread can get this one's pointer
  g_live_heaps.fetch_sub(1, std::memory_order_relaxed);
  h->remote.abandoned.store(true, std::memory_order_seq_cst);
  pool_put(h, h->segments != nullptr);
  // Frees that came in before it was marked abandoned noted nothing, nor did what a sink left after
  // the collection above (sink.h): the purger drains them. (Pooled, the heap is no longer this
  // thread's: only its shared words are read; the collection above emptied its backlog.)
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (remote_anything(&h->remote)) purge_work_note();
}

// The calling thread's first slow path: adopt a heap from the pool, or make one.
Heap* heap_acquire() {
  runtime_init();
  Heap* h = pool_take();
  if (h) h->remote.abandoned.store(false, std::memory_order_relaxed);
  else h = heap_new();
  if (!h) return nullptr;
  heap_set_owner(h, thread_owner_id());
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
  if (remote_waiting(h)) heap_collect(h, true);
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

// whole: prepare took every lock (fork.cpp), so the pool, the orphan heap and the heap registry are
// whole. A heap whose thread was in a slow path on it (busy) may be torn; one whose thread was in a fast
// path is whole but for a cell on no list (a leak) or, for the forking thread, a pop that may still
// complete (heap_fork_child). So the forking thread keeps its heap unless it is busy, and the heaps of
// the parent's other threads, which do not exist here, go to the pool whole, as at thread exit: their
// pages serve the child's mallocs (heap_reclaim) and its frees of their cells are drained. Heaps that
// cannot be trusted are stranded: their memory stays mapped, shared copy-on-write with the parent.
void threads_fork_child(bool whole) {
  g_orphan_lock.reset_in_child();
  pool_fork_child(whole);
  if (!whole) g_orphan = nullptr;   // it may be mid-update: abandon it
  Heap* me = tl_heap;
  bool mine = me != &g_empty_heap && me != &g_dead_heap;
  bool keep = whole && mine && me->busy == 0;
  // Live in the parent: neither pooled (abandoned), nor the orphan, nor stranded by an earlier fork.
  for (Heap* h = heaps_all(); h; h = h->all_next) {
    // A collection another thread had under way is over: that thread does not exist here. (A
    // stranded heap is never collected again; heaps_collect_seq skips it.)
    h->collect_seq &= ~1u;
    if (h->orphan || h->stranded || h->remote.abandoned.load(std::memory_order_relaxed)) continue;
    if (h == me && keep) continue;
    // Its thread does not exist here, and a thread the child starts may get its thread pointer: its
    // pages carry the heap's address from now on (a torn heap's segment list is whole at every
    // instant: a segment goes in and out of it with one store).
    heap_set_owner(h, reinterpret_cast<uintptr_t>(h));
    if (whole && h != me && h->busy == 0) {
      heap_fork_inherit(h);
      h->remote.abandoned.store(true, std::memory_order_relaxed);
      pool_put(h, h->segments != nullptr);
    } else {
      h->stranded = true;
    }
  }
  if (keep) {
    heap_fork_inherit(me);
    heap_fork_child(me);
  }
  else if (mine) tl_heap = &g_empty_heap;   // a fresh heap on the next malloc
  g_live_heaps.store(keep ? 1 : 0, std::memory_order_relaxed);
}

}  // namespace km
