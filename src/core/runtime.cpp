// runtime.cpp — start-up (options, banner), fork handlers (every lock in one order), exit summary.
//
// Lock order, everywhere: purge pass → heap pool → orphan heap → metadata → spare segments →
// segments list → each segment (list order). The huge-block cache is lock-free. The fork prepare handler takes them in that order; the
// parent releases them; the child resets them (only the forking thread exists there). A fork from a
// signal handler that interrupted one of our critical sections takes no lock at all: waiting for any
// of them could wait for the interrupted thread itself.
#include "core/runtime.h"

#include <atomic>

#include "core/diag.h"
#include "core/heap.h"
#include "core/meta.h"
#include "core/options.h"
#include "core/purge.h"
#include "core/secure.h"
#include "core/segment.h"
#include "core/stats.h"
#include "platform/os.h"

namespace km {
namespace {
std::atomic<int> g_init_state{0};   // 0 not started, 1 running, 2 done

// prepare, parent and child all run in the forking thread: a per-thread flag, so that two threads
// forking at once (each in its own prepare) never read each other's answer.
constinit thread_local bool tl_fork_took_locks = false;

void fork_prepare() {
  tl_fork_took_locks = tl_locks_held == 0;
  if (!tl_fork_took_locks) return;
  purge_fork_prepare();
  heaps_fork_prepare();
  meta_fork_prepare();
  segments_fork_prepare();
}
void fork_parent() {
  if (!tl_fork_took_locks) return;
  segments_fork_parent();
  meta_fork_parent();
  heaps_fork_parent();
  purge_fork_parent();
}
// With the locks taken, every structure they guard is whole in the child: reset the locks and go on.
// Without (a fork from a signal handler that interrupted one of our critical sections), any of them
// may be torn: the child abandons them all (heap pool, orphan heap, spare segments, the segment list,
// the metadata chunk) and starts afresh; the memory stays mapped, shared copy-on-write with the parent.
void fork_child() {
  bool whole = tl_fork_took_locks;
  segments_fork_child(whole);
  meta_fork_child(whole);
  heaps_fork_child(whole);
  purge_fork_child();
  tl_locks_held = 0;
}

// Before anything is mapped: on a kernel page other than os::kPageSize the layers above would guard,
// purge and trim at the wrong granularity (see os::page_size_supported), so refuse to start.
void check_page_size() {
  size_t kernel = os::kernel_page_size();
  if (KM_LIKELY(os::page_size_supported(kernel, os::kPageSize))) return;
  Msg m;
  m.str("unsupported page size ").num(kernel).str(" (built for ").num(os::kPageSize).str(")\n");
  m.emit_stderr();
  os::abort_now();
}
}  // namespace

void runtime_init() {
  if (KM_LIKELY(g_init_state.load(std::memory_order_acquire) == 2)) return;
  int expected = 0;
  if (g_init_state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
    check_page_size();
    options_init();
    secure_init();
    g_page_secret = os::random_u64();   // free tags: unguessable, so no user data matches one
    g_init_state.store(2, std::memory_order_release);
    if (option(Opt::verbose)) options_print();
    if (option(Opt::stats)) os::keep_stderr();
    return;
  }
  while (g_init_state.load(std::memory_order_acquire) != 2) os::yield();
}

// Runs when the library is loaded (LD_PRELOAD or -lkmalloc), after libc is up.
__attribute__((constructor)) static void kmalloc_load() {
  runtime_init();
  os::on_fork(fork_prepare, fork_parent, fork_child);
}

// Runs at exit (after the program's own destructors).
__attribute__((destructor)) static void kmalloc_unload() {
  if (option(Opt::stats)) stats_print();
}

}  // namespace km
