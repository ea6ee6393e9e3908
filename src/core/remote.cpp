// remote.cpp — the push side of a heap's remote stack, and the sending of batches (remote.h).
#include "core/remote.h"

#include "core/purge_work.h"

namespace km {

void remote_push_chain(RemoteStack* to, Block* first, Block* last) {
  Block* head = to->head.load(std::memory_order_relaxed);
  do last->next = head;
  while (!to->head.compare_exchange_weak(head, first, std::memory_order_release, std::memory_order_relaxed));
  // The first cells on an exited thread's stack: nobody would collect them, so the purger (if the
  // program has one) drains them and thins the pages they empty within the purge delay. seq_cst pairs
  // with the exiting thread, which marks the stack abandoned and then looks at it once more.
  if (head == nullptr && to->abandoned.load(std::memory_order_seq_cst)) purge_work_note();
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
