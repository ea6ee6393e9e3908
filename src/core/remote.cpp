// remote.cpp — the push side of a heap's remote stack, and the sending of batches (remote.h).
#include "core/remote.h"

#include "core/purge_work.h"

namespace km {

void remote_push_chain(RemoteStack* to, Block* first, Block* last) {
  Block* head = to->head.load(std::memory_order_relaxed);
  do last->next = head;
  while (!to->head.compare_exchange_weak(head, first, std::memory_order_release, std::memory_order_relaxed));
  // The first cells on an exited thread's stack: nobody would collect them, so the purger (if the
  // program has one) drains them and thins the pages they empty within the purge delay (the exiting
  // thread marks the stack abandoned, then looks at it once more). On a live heap's stack: if the
  // owner stays idle, the purger gives back the OS pages those frees emptied (sink.h). Only the first
  // push onto an empty stack notes: one look per wave of frees, and a busy owner, which empties its
  // stack on its slow paths, is noted at most once between two of them.
  if (head == nullptr) purge_work_note();
}

void remote_push_sunk(RemoteStack* to, Page* pg) {
  Page* head = to->sunk.load(std::memory_order_relaxed);
  do pg->sunk_next = head;
  while (!to->sunk.compare_exchange_weak(head, pg, std::memory_order_release, std::memory_order_relaxed));
}

void remote_batch_send(RemoteBatch* batch, RemoteBatch::Slot* s) {
  RemoteStack* to = s->to;
  Block* first = s->head;
  Block* last = s->tail;
  s->to = nullptr;
  s->head = s->tail = nullptr;
  s->count = s->bytes = 0;
  batch->used--;
  remote_push_chain(to, first, last);
}

void remote_batch_flush(RemoteBatch* batch) {
  if (batch->used == 0) return;
  for (auto& s : batch->slot)
    if (s.to) remote_batch_send(batch, &s);
}

}  // namespace km
