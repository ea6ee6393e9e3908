// sink.h — giving back the memory that other threads free into the heap of an idle thread.
//
// Only a heap's owner may touch its page lists, so cells that other threads free to it wait on its
// remote stack (remote.h) until its next slow path. A thread that allocated much and then blocks
// (a main thread in join, a producer waiting on its queue) would keep all of it resident however much
// of it was freed. The purger watches such stacks: when frees have waited kSinkDelays purge delays
// and the owner took no slow path meanwhile, it takes the stack (an exchange, as the owner would) and
// holds the cells. An OS page of a lane page on which every cell is in its hands is free of anything
// the owner can reach: the purger gives it back (MADV_DONTNEED), and leaves the page a *sink note*
// (Page::sunk_*): the cells on those OS pages, now off every list, and the OS pages. The owner's next
// collection (heap.cpp: collect_remote) turns a note into
// what thinning would have left (thin.h): dropped cells in thinned OS pages, which come back when the
// lane needs them.
//
// The cells it could not give back (their OS pages hold a cell it does not have) it *parks*
// (RemoteStack::parked), which the owner's collection takes like the stack: the stack is left empty,
// so that the next free onto it notes the purger again, and the next sink looks at the parked cells
// with the new ones (an OS page may be all free by then).
//
// Who touches what: the purger (or a trim), under the sink lock for the whole sink and the purge
// pass lock for each step of it (purge.cpp: a fork takes the pass lock, and finds the sink paused
// between two steps, which sink_fork_child can hand back), owns the cells from the exchange until
// they are parked, the Segment::sink_* fields and the Heap::sink_* fields. A page's note goes from purger to collector through
// Page::sunk_state (page.h), a tiny lock that either side holds for a few loads and stores; the purger
// adds to a note the collector has not taken yet. The purger reads the page's geometry (set up before
// any of its cells was handed out) and owner, never its lists or counts. The owner's thinning purges
// only OS pages whose cells are all on its lists, the sink only those whose cells are all in the
// purger's hands: never the same OS page. A page with held, parked or noted cells counts them in
// `used`, so it is not retired or moved from under the purger (a page that moved with its segment to
// another heap, heap_reclaim, has its note forwarded there). Secure pages and spans are parked as they
// are. A parked cell keeps its free tag: a second free of it is caught. Known limit, as for thinning:
// a double free of a sunk cell is not (its tag went with its OS page).
//
// When: the first free onto an empty stack of a live heap notes the purger (remote.cpp), which then
// looks at the heap every half purge delay; a slow path of the owner ends the watch (it collects by
// itself).
// Without a purger thread (KMALLOC_PURGE_THREAD=0, or one that could not start) nothing is sunk: the
// frees wait for the owner, as before.
#pragma once
#include <cstddef>

namespace km {

// An owner idle this many purge delays (160 ms by default) is idle for a while yet: one that naps
// between bursts of work, a producer every 20 ms say, would fault in every OS page given back at its
// next burst (a 3-thread server whose acceptor naps 20 ms: page faults 4.8K -> 11K and 10% more
// time with a sink after one delay; as before with this many).
constexpr long kSinkDelays = 16;
// One look at every live heap (the purger's pass, with the sink and pass locks held): sink the
// stacks whose frees have waited kSinkDelays * `delay` ms on an owner that took no slow path since.
// A heap sunk before waits twice as long for each sink in a row while its owner stays idle (new
// frees trickling in must not make the purger sort the same cells again and again). Returns true
// while some heap is being watched (frees wait on an idle owner, not yet sunk): the purger looks
// again within the delay.
bool heaps_sink_idle(long delay);
// malloc_trim: sink every live heap's waiting frees now, idle or not (with both locks held).
void heaps_sink_all();
// Sinks so far that gave anything back, and the bytes they gave back (the KMALLOC_STATS summary).
void sink_totals(size_t* sinks, size_t* bytes);
// A fork child: the cells of a sink the purger had under way go to their heap's parked list (whole:
// the fork took the pass lock, so the sink was paused between two steps).
void sink_fork_child(bool whole);

}  // namespace km
