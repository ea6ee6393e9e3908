// fork.cpp — the fork handlers: every lock of the allocator in one order, so the child finds each
// structure whole.
//
// Lock order, everywhere: sink → purge pass → heap pool → orphan heap → metadata → spare segments →
// segments list → each segment (list order). The fork takes all but the first: a sink under way
// pauses between two steps for it and its child hands the sink's cells back (sink.h). The
// huge-block cache and the remote stacks are lock-free. The prepare handler takes the locks in that
// order; the parent releases them; the child resets them (only the forking thread exists there). A fork from a signal handler that interrupted
// one of our critical sections (tl_locks_held != 0, lock.h) takes no lock at all: waiting for any of
// them could wait for the interrupted thread itself.
#include "core/fork.h"

#include "core/lock.h"
#include "core/meta.h"
#include "core/purge.h"
#include "core/segment.h"
#include "core/thread.h"
#include "platform/os.h"

namespace km {
namespace {
// prepare, parent and child all run in the forking thread: a per-thread flag, so that two threads
// forking at once (each in its own prepare) never read each other's answer.
constinit thread_local bool tl_fork_took_locks = false;

void fork_prepare() {
  tl_fork_took_locks = tl_locks_held == 0;
  if (!tl_fork_took_locks) return;
  purge_fork_prepare();
  threads_fork_prepare();
  meta_fork_prepare();
  segments_fork_prepare();
}
void fork_parent() {
  if (!tl_fork_took_locks) return;
  segments_fork_parent();
  meta_fork_parent();
  threads_fork_parent();
  purge_fork_parent();
}
// With the locks taken, every structure they guard is whole in the child: reset the locks and go on.
// The heaps are lock-free, so each says whether its thread was changing it (Heap::busy): the forking
// thread keeps its heap and the other threads' heaps are pooled, unless busy (thread.cpp).
// Without the locks (a fork from a signal handler that interrupted one of our critical sections), any
// of them may be torn: the child abandons them all (heap pool, orphan heap, every heap, spare
// segments, the segment list, the metadata chunk) and starts afresh; the memory stays mapped, shared
// copy-on-write with the parent.
void fork_child() {
  bool whole = tl_fork_took_locks;
  segments_fork_child(whole);
  meta_fork_child(whole);
  threads_fork_child(whole);
  purge_fork_child(whole);
  tl_locks_held = 0;
}
}  // namespace

void fork_install() { os::on_fork(fork_prepare, fork_parent, fork_child); }

}  // namespace km
