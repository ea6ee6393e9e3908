// remote.h — cells freed by a thread that does not own their page: a lock-free stack per heap.
//
// Any thread pushes (one CAS); only the owner takes, and it takes the whole stack at once (one
// exchange), so there is no ABA: a cell cannot leave the stack and come back while a push is at it.
// A cell on the stack is already tagged free (a second free of it is caught) and still counted in its
// page's `used` until the owner collects it (heap.cpp: collect_remote). When the owner's thread has
// exited, the stack is marked abandoned: the first push onto an empty abandoned stack tells the
// purger (purge_work.h), which drains it within the purge delay.
#pragma once
#include <atomic>

#include "core/page.h"

namespace km {

struct RemoteStack {
  // On a cache line of its own: other threads write it, and it must not share the owner's hot line.
  alignas(64) std::atomic<Block*> head{nullptr};
  std::atomic<bool> abandoned{false};   // the owner's thread exited (its heap is in the pool)
  char pad_[64 - sizeof(std::atomic<Block*>) - sizeof(std::atomic<bool>)] = {};
};

void remote_push(RemoteStack* to, Block* b);
// The owner: every cell pushed so far, newest first (nullptr when none).
KM_INLINE Block* remote_take(RemoteStack* s) {
  if (s->head.load(std::memory_order_relaxed) == nullptr) return nullptr;
  return s->head.exchange(nullptr, std::memory_order_acquire);
}
KM_INLINE bool remote_pending(const RemoteStack* s) {
  return s->head.load(std::memory_order_relaxed) != nullptr;
}

}  // namespace km
