// remote.cpp — the push side of a heap's remote stack (remote.h).
#include "core/remote.h"

#include "core/purge_work.h"

namespace km {

void remote_push(RemoteStack* to, Block* b) {
  Block* head = to->head.load(std::memory_order_relaxed);
  do b->next = head;
  while (!to->head.compare_exchange_weak(head, b, std::memory_order_release, std::memory_order_relaxed));
  // The first cell on an exited thread's stack: nobody would collect it, so the purger (if the
  // program has one) drains it and thins the pages it empties within the purge delay. seq_cst pairs
  // with the exiting thread, which marks the stack abandoned and then looks at it once more.
  if (head == nullptr && to->abandoned.load(std::memory_order_seq_cst)) purge_work_note();
}

}  // namespace km
