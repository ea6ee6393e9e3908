// ring.hpp — what the workloads that hand blocks between threads share: the bounded single-producer
// single-consumer Ring (prodcons) and HandoffCircle, threads that each pass blocks to the next one
// (handoff-mix, large-mt).
#pragma once
#include <atomic>
#include <cstddef>
#include <thread>
#include <vector>

namespace kmb {

// Lamport ring with cached indices: each side re-reads the other's index only when it looks
// full/empty, so the ring costs little next to malloc/free. The buffer is allocated by the
// constructor, before any timed phase. One thread pushes, one thread pops.
class Ring {
 public:
  explicit Ring(size_t cap) : mask_(cap - 1), buf_(new void*[cap]) {}
  ~Ring() { delete[] buf_; }
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  bool try_push(void* p) {
    const size_t t = tail_.load(std::memory_order_relaxed);
    if (t - head_cache_ > mask_) {
      head_cache_ = head_.load(std::memory_order_acquire);
      if (t - head_cache_ > mask_) return false;
    }
    buf_[t & mask_] = p;
    tail_.store(t + 1, std::memory_order_release);
    return true;
  }
  // Sets *p and returns true, or returns false when the ring is empty.
  bool try_pop(void** p) {
    const size_t h = head_.load(std::memory_order_relaxed);
    if (h == tail_cache_) {
      tail_cache_ = tail_.load(std::memory_order_acquire);
      if (h == tail_cache_) return false;
    }
    *p = buf_[h & mask_];
    head_.store(h + 1, std::memory_order_release);
    return true;
  }
  void push(void* p) {
    for (int spins = 0; !try_push(p); ++spins) wait(spins);
  }
  void* pop() {
    void* p;
    for (int spins = 0; !try_pop(&p); ++spins) wait(spins);
    return p;
  }

  // Spin briefly, then give the core away: on a loaded 2-core machine the other side may not be running.
  static void wait(int spins) {
    if (spins < 64) __builtin_ia32_pause();
    else std::this_thread::yield();
  }

 private:
  const size_t mask_;
  void** const buf_;
  alignas(64) std::atomic<size_t> tail_{0};
  size_t head_cache_ = 0;  // producer's view of head_
  alignas(64) std::atomic<size_t> head_{0};
  size_t tail_cache_ = 0;  // consumer's view of tail_
};

}  // namespace kmb

namespace kmb {

// Threads in a circle, each handing blocks to the next: thread t sends to thread (t + 1) % n through
// ring t, and receives from thread (t - 1) % n through ring t - 1. With n = 1 a thread sends to itself.
// A thread whose outbox is full receives from its inbox while it waits, so a circle of full rings
// always drains and nobody deadlocks. finish() sends an end marker (nullptr; blocks are never null)
// and receives until the predecessor's marker, so after it returns no block is in flight to t.
// `recv(void*)` is the caller's handler for a received block (check and free it).
class HandoffCircle {
 public:
  HandoffCircle(int n, size_t cap) : n_(n) {
    for (int i = 0; i < n; ++i) rings_.push_back(new Ring(cap));
  }
  ~HandoffCircle() {
    for (Ring* r : rings_) delete r;
  }
  HandoffCircle(const HandoffCircle&) = delete;
  HandoffCircle& operator=(const HandoffCircle&) = delete;

  template <class Recv>
  void send(int t, void* p, Recv&& recv) {
    for (int spins = 0; !rings_[static_cast<size_t>(t)]->try_push(p); ++spins) {
      if (!drain(t, recv)) Ring::wait(spins);
    }
  }
  // Receives whatever is waiting in t's inbox; returns whether there was anything. An end marker seen
  // here is remembered for finish().
  template <class Recv>
  bool drain(int t, Recv&& recv) {
    Ring* in = inbox(t);
    bool any = false;
    void* p;
    while (!ended_[static_cast<size_t>(t)].v && in->try_pop(&p)) {
      any = true;
      if (p == nullptr) ended_[static_cast<size_t>(t)].v = true;
      else recv(p);
    }
    return any;
  }
  template <class Recv>
  void finish(int t, Recv&& recv) {
    send(t, nullptr, recv);
    for (int spins = 0; !ended_[static_cast<size_t>(t)].v; ++spins)
      if (!drain(t, recv)) Ring::wait(spins);
  }

 private:
  Ring* inbox(int t) { return rings_[static_cast<size_t>((t + n_ - 1) % n_)]; }
  const int n_;
  std::vector<Ring*> rings_;
  // ended_[t] is written and read only by thread t; padded so the threads do not share a line.
  struct alignas(64) Flag {
    bool v = false;
  };
  std::vector<Flag> ended_ = std::vector<Flag>(static_cast<size_t>(n_));
};

}  // namespace kmb
