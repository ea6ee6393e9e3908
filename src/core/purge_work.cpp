// purge_work.cpp — the work word and the purger's sleep on it (purge_work.h).
#include "core/purge_work.h"

#include "core/options.h"
#include "platform/os.h"

namespace km {

namespace {
// A note sets g_noted and bumps g_work only when g_noted is clear: the notes of a busy program read
// a shared line instead of writing it (a page retired per slow path would bounce it between cores).
// The purger, or a poll where it does not run, clears g_noted before it looks at the work.
std::atomic<bool> g_noted{false};
std::atomic<uint32_t> g_work{0};       // bumped by every note that set g_noted
std::atomic<bool> g_sleeping{false};   // the purger waits on g_work with nothing pending
static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t), "g_work is a futex word");
const uint32_t* futex_word() { return reinterpret_cast<const uint32_t*>(&g_work); }
}  // namespace

void purge_work_note() {
  if (option(Opt::purge_delay_ms) < 0) return;   // never purged: nothing to wake for
  // The work noted (dirty slots, a cached block, a remote free) before the flag is read, against
  // purge_work_take's clear before it looks (store-load order: a full fence on both sides).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (g_noted.load(std::memory_order_relaxed)) return;
  g_noted.store(true, std::memory_order_relaxed);
  g_work.fetch_add(1, std::memory_order_seq_cst);
  if (g_sleeping.load(std::memory_order_seq_cst)) os::futex_wake_one(futex_word());
}

bool purge_work_take() {
  if (!g_noted.load(std::memory_order_relaxed)) return false;
  g_noted.store(false, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return true;
}

uint32_t purge_work_word() { return g_work.load(std::memory_order_acquire); }

void purge_work_wait(uint32_t seen) {
  // seq_cst on both sides: either the noter sees g_sleeping and wakes us, or we see its bump.
  g_sleeping.store(true, std::memory_order_seq_cst);
  if (g_work.load(std::memory_order_seq_cst) == seen) os::futex_wait(futex_word(), seen);
  g_sleeping.store(false, std::memory_order_relaxed);
}

void purge_work_fork_child() {
  g_sleeping.store(false, std::memory_order_relaxed);
  g_noted.store(true, std::memory_order_relaxed);   // the parent's purger's work is the child's now
}

}  // namespace km
