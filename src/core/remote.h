// remote.h — cells freed by a thread that does not own their page: a lock-free stack per heap, fed
// in batches.
//
// The stack (RemoteStack, one per heap). Any thread pushes a chain of cells (one CAS per chain); the
// owner takes, and so does the purger when the owner idles (sink.h), each the whole stack at once
// (one exchange), so there is no ABA: a cell cannot leave the stack and come back while a push is at
// it. A cell on the stack is already tagged free (a second free of it is caught) and still counted
// in its page's `used` until the owner collects it (heap.cpp: collect_remote). When the owner's
// thread has exited, the stack is marked abandoned: the first push onto an empty abandoned stack
// tells the purger (purge_work.h), which drains it within the purge delay.
//
// The batch (RemoteBatch, one per heap, for the cells its thread frees into *other* heaps). A free of
// another heap's cell appends it to the slot of that heap (a plain store, no atomic); a slot goes to
// its stack with one CAS when it holds kCells cells or kBytes bytes, when a free for a fifth owner
// needs its place, and on the thread's slow paths, trim and exit (heap.cpp: heap_collect,
// alloc_from). Invariants:
//  - Who: only the thread running the heap touches its batch (the owner thread, or whoever holds a
//    pooled heap exclusively, e.g. the purger's drain; a pooled heap's batch is always empty, since
//    thread exit flushes it before the heap goes to the pool). Threads without a heap of their own
//    (before set-up, after exit) push each cell straight onto the stack.
//  - Bound: at most kOwners × (kCells cells or kBytes bytes, whichever comes first; one cell of any
//    size) wait in a batch, so a thread that frees and goes idle holds little.
//  - A cell in a batch is free for the program: it is tagged free (a double free is caught) and was
//    counted in the freeing heap's remote_freed when appended, so "in use" leaves it out at once.
//    Its page still counts it in `used` until the owner collects it, as for a cell on the stack.
//  - A slot names the owner's stack, not the heap; heaps are never freed, so a slot whose owner
//    exited, or whose page moved to another heap (heap_reclaim), stays valid: the push lands on the
//    pooled heap's stack, which the purger drains and forwards, exactly as a late single push would.
//  - Signal handlers: malloc and free are not reentrant, so a handler never runs one while an append
//    or flush is half done in the same thread. Appends and flushes run with the heap marked busy
//    (HeapBusy): a fork from a handler that interrupted one strands the heap in the child
//    (thread.cpp: threads_fork_child). A whole batch kept by a fork child is sent there as in the
//    parent: its cells' heaps are the child's pooled heaps, whose remote frees are drained.
#pragma once
#include <atomic>

#include "core/page.h"

namespace km {

struct RemoteStack {
  // On a cache line of its own: other threads write it, and it must not share the owner's hot line.
  alignas(64) std::atomic<Block*> head{nullptr};
  // Pages with a sink note of the purger (sink.h), linked through Page::sunk_next: pushed by the
  // purger (and by a collector forwarding a page that moved to another heap), taken whole by the
  // collector, as `head`.
  std::atomic<Page*> sunk{nullptr};
  // Cells the purger took from `head` and could not give back (sink.h), linked through Block::next:
  // set by the purger only, taken whole by the collector (or by the purger's next sink).
  std::atomic<Block*> parked{nullptr};
  std::atomic<bool> abandoned{false};   // the owner's thread exited (its heap is in the pool)
  char pad_[64 - 3 * sizeof(void*) - sizeof(std::atomic<bool>)] = {};
};

// Push the chain first → … → last (linked through Block::next) with one CAS. The first cells on an
// empty stack note the purger (purge_work.h): it drains an exited thread's stack, and watches a live
// heap's (sink.h).
void remote_push_chain(RemoteStack* to, Block* first, Block* last);
inline void remote_push(RemoteStack* to, Block* b) { remote_push_chain(to, b, b); }
// The owner: every cell pushed so far, newest chain first (nullptr when none).
KM_INLINE Block* remote_take(RemoteStack* s) {
  if (s->head.load(std::memory_order_relaxed) == nullptr) return nullptr;
  return s->head.exchange(nullptr, std::memory_order_acquire);
}
KM_INLINE bool remote_pending(const RemoteStack* s) {
  return s->head.load(std::memory_order_relaxed) != nullptr;
}
// The collector, once `head` is empty: the cells the purger parked (nullptr when none).
KM_INLINE Block* remote_take_parked(RemoteStack* s) {
  if (s->parked.load(std::memory_order_relaxed) == nullptr) return nullptr;
  return s->parked.exchange(nullptr, std::memory_order_acquire);
}
// Anything other threads left on the stack for its collector: cells, parked cells or sink notes.
// Any thread (only atomics are read).
KM_INLINE bool remote_anything(const RemoteStack* s) {
  return s->head.load(std::memory_order_relaxed) != nullptr ||
         s->parked.load(std::memory_order_relaxed) != nullptr ||
         s->sunk.load(std::memory_order_relaxed) != nullptr;
}
// A page with a sink note, onto the stack's sunk list (one CAS).
void remote_push_sunk(RemoteStack* to, Page* pg);
// The collector: every page with a sink note (nullptr when none).
KM_INLINE Page* remote_take_sunk(RemoteStack* s) {
  if (s->sunk.load(std::memory_order_relaxed) == nullptr) return nullptr;
  return s->sunk.exchange(nullptr, std::memory_order_acquire);
}

struct RemoteBatch {
  static constexpr unsigned kOwners = 4;          // owners batched at once
  static constexpr uint32_t kCells = 64;          // a slot goes at this many cells…
  static constexpr uint32_t kBytes = 16u << 10;   // …or this many bytes
  struct Slot {
    RemoteStack* to;   // nullptr: the slot is empty
    Block* head;       // newest cell; its chain ends at tail (whose next is not yet set)
    Block* tail;
    uint32_t count;
    uint32_t bytes;
  };
  Slot slot[kOwners] = {};
  unsigned used = 0;     // slots in use (0: nothing to flush, one load on the slow paths)
  unsigned victim = 0;   // the slot a fifth owner takes next (round robin)
};

// Send one slot's chain (it must be in use) and empty the slot.
void remote_batch_send(RemoteBatch* batch, RemoteBatch::Slot* s);
// Send every slot.
void remote_batch_flush(RemoteBatch* batch);
// A cell of `bytes` bytes, tagged free, for the stack `to`: into the batch (sent when a bound is met).
KM_INLINE void remote_batch_add(RemoteBatch* batch, RemoteStack* to, Block* b, uint32_t bytes) {
  RemoteBatch::Slot* s = nullptr;
  for (auto& c : batch->slot)
    if (c.to == to) {
      s = &c;
      break;
    }
  if (KM_LIKELY(s != nullptr)) {
    b->next = s->head;
    s->head = b;
    s->count++;
    s->bytes += bytes;
  } else {
    for (auto& c : batch->slot)
      if (c.to == nullptr) {
        s = &c;
        break;
      }
    if (!s) {   // all taken: send one, round robin
      s = &batch->slot[batch->victim];
      batch->victim = (batch->victim + 1) % RemoteBatch::kOwners;
      remote_batch_send(batch, s);
    }
    s->head = s->tail = b;
    s->count = 1;
    s->bytes = bytes;
    s->to = to;
    batch->used++;
  }
  if (KM_UNLIKELY(s->count >= RemoteBatch::kCells || s->bytes >= RemoteBatch::kBytes))
    remote_batch_send(batch, s);
}

}  // namespace km
