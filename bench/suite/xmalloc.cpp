// xmalloc — producers allocate 64-byte blocks, consumers free them (the shape of xmalloc-test).
//
// Stresses: remote frees in bulk (issue 12): P producer threads malloc blocks of `size` bytes, stamp
// them and collect them into batches of `batch`; full batches go onto one shared queue, from which C
// consumer threads take them, check every block and free it. Nearly every free is remote and they
// arrive in runs from one owner, which an allocator that batches cross-thread frees can exploit. The
// batch records themselves are malloc'ed by the producer and freed by the consumer too, as in the
// original. Producers wait while `depth` batches are queued, so the live set stays bounded.
// --threads T means T/2 producers and T - T/2 consumers (at least one each).
#include <algorithm>
#include <mutex>

#include "common.hpp"

namespace {

struct Batch {
  Batch* next;
  long n;
  void* items[1];  // `batch` entries in the real allocation
};

// A mutex-guarded FIFO of batches, intrusive so it never allocates; one lock per batch is noise next
// to the batch's mallocs and frees.
class Queue {
 public:
  void push(Batch* b) {
    b->next = nullptr;
    std::lock_guard<std::mutex> g(mu_);
    if (tail_) tail_->next = b;
    else head_ = b;
    tail_ = b;
    depth_.fetch_add(1, std::memory_order_relaxed);
  }
  Batch* pop() {
    std::lock_guard<std::mutex> g(mu_);
    Batch* b = head_;
    if (b) {
      head_ = b->next;
      if (!head_) tail_ = nullptr;
      depth_.fetch_sub(1, std::memory_order_relaxed);
    }
    return b;
  }
  long depth() const { return depth_.load(std::memory_order_relaxed); }

 private:
  std::mutex mu_;
  Batch* head_ = nullptr;
  Batch* tail_ = nullptr;
  std::atomic<long> depth_{0};
};

void wait(int spins) {
  if (spins < 64) __builtin_ia32_pause();
  else std::this_thread::yield();
}

}  // namespace

int main(int argc, char** argv) {
  kmb::Args args(argc, argv, {"threads", "items", "size", "batch", "depth"});
  const int threads = static_cast<int>(args.num("threads", 2, 2));
  const long items = args.num("items", 12'000'000, 20'000, true);  // per producer
  const size_t size = static_cast<size_t>(args.num("size", 64, 64));
  const long batch = args.num("batch", 256, 64);
  const long depth = args.num("depth", 64, 8);
  if (threads < 1 || size < 16 || size >= (1u << 24) || batch < 1 || depth < 1) return 64;
  const int producers = threads >= 2 ? threads / 2 : 1;
  const int consumers = threads >= 2 ? threads - producers : 1;

  Queue queue;
  std::atomic<int> producing{producers};
  bool all;
  const double secs = kmb::run_timed(
      producers + consumers,
      [&](int t, kmb::StartLine& start) {
        if (t < producers) {
          kmb::Rng rng(0x3A110Cull + static_cast<uint64_t>(t) * 7919);
          start.arrive_and_wait();
          for (long done = 0; done < items;) {
            const long n = std::min(batch, items - done);
            auto* b = static_cast<Batch*>(std::malloc(sizeof(Batch) + sizeof(void*) * static_cast<size_t>(n - 1)));
            if (!b) std::abort();
            b->n = n;
            for (long i = 0; i < n; ++i) {
              void* p = std::malloc(size);
              if (!p) std::abort();
              kmb::stamp_self(p, size, rng.next());
              b->items[i] = p;
            }
            for (int spins = 0; queue.depth() >= depth; ++spins) wait(spins);
            queue.push(b);
            done += n;
          }
          producing.fetch_sub(1, std::memory_order_release);
          return true;
        }
        bool ok = true;
        start.arrive_and_wait();
        for (int spins = 0;;) {
          // Read `producing` before popping: if it was 0, every batch was already queued.
          const bool last = producing.load(std::memory_order_acquire) == 0;
          Batch* b = queue.pop();
          if (!b) {
            if (last) break;
            wait(spins++);
            continue;
          }
          spins = 0;
          for (long i = 0; i < b->n; ++i) {
            ok &= kmb::verify_self(b->items[i]) == size;
            std::free(b->items[i]);
          }
          std::free(b);
        }
        return ok;
      },
      &all);
  return kmb::report("xmalloc", producers + consumers, 2.0 * static_cast<double>(items) * producers, secs, all);
}
