// handoff.cpp — built-in workload 3 of scripts/ab: producer and consumer threads handing blocks across.
//
// Fragmentation it provokes: every block is allocated by a producer thread and freed by a consumer
// thread. Allocators with per-thread heaps or arenas must send the memory back to the producer's heap
// (a remote free); until they do, or if they cache it on the consumer's side, the producers keep
// asking for fresh memory while freed blocks pile up elsewhere. glibc gives each thread its own arena
// (hence MALLOC_ARENA_MAX=2 as a comparator). Consumers keep a window of recent blocks alive, so pages
// hold a mix of old and new blocks; half-way the block sizes change (small messages give way to larger
// payloads), so the holes left by the first sizes do not fit the second.
#include <condition_variable>
#include <deque>
#include <mutex>
#include <vector>

#include "common.h"

namespace {

constexpr size_t kBatch = 64;       // blocks handed over per lock
constexpr size_t kMaxBatches = 64;  // queue bound, per pair

struct Channel {
  std::mutex m;
  std::condition_variable cv;
  std::deque<std::vector<void*>> q;
  bool closed = false;

  void put(std::vector<void*>&& batch) {
    std::unique_lock<std::mutex> lock(m);
    cv.wait(lock, [&] { return q.size() < kMaxBatches; });
    q.push_back(std::move(batch));
    cv.notify_all();
  }
  bool get(std::vector<void*>& batch) {
    std::unique_lock<std::mutex> lock(m);
    cv.wait(lock, [&] { return !q.empty() || closed; });
    if (q.empty()) return false;
    batch = std::move(q.front());
    q.pop_front();
    cv.notify_all();
    return true;
  }
  void close() {
    std::lock_guard<std::mutex> lock(m);
    closed = true;
    cv.notify_all();
  }
};

void produce(Channel& ch, uint64_t seed, size_t blocks) {
  ab::Rng rng(seed);
  std::vector<void*> batch;
  for (size_t i = 0; i < blocks; ++i) {
    bool second_half = i >= blocks / 2;
    size_t n = second_half ? rng.range(512, 4096) : rng.range(32, 512);
    batch.push_back(ab::take(n, 0x50));
    if (batch.size() == kBatch) {
      ch.put(std::move(batch));
      batch.clear();
    }
  }
  if (!batch.empty()) ch.put(std::move(batch));
  ch.close();
}

// Keeps the last `window` blocks alive (a random one of them dies for each one received).
void consume(Channel& ch, uint64_t seed, size_t window, std::vector<void*>& kept) {
  ab::Rng rng(seed);
  std::vector<void*> batch;
  while (ch.get(batch)) {
    for (void* p : batch) {
      static_cast<volatile unsigned char*>(p)[0];
      if (kept.size() < window) {
        kept.push_back(p);
      } else {
        void*& victim = kept[rng.next() % kept.size()];
        std::free(victim);
        victim = p;
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const double s = ab::scale(argc, argv);
  const size_t blocks = size_t(2000000 * s);  // per producer
  const size_t window = 60000;                // per consumer
  constexpr int kPairs = 2;
  std::vector<Channel> channels(kPairs);
  std::vector<std::vector<void*>> kept(kPairs);
  std::vector<std::thread> threads;
  for (int i = 0; i < kPairs; ++i) {
    threads.emplace_back(produce, std::ref(channels[i]), 10 + i, blocks);
    threads.emplace_back(consume, std::ref(channels[i]), 20 + i, window, std::ref(kept[i]));
  }
  for (auto& t : threads) t.join();
  // The consumers' windows stay alive through the quiet phase; the threads are gone.
  size_t live = 0;
  for (auto& k : kept) live += k.size();
  std::printf("handoff: %d pairs, %zu blocks each, %zu kept\n", kPairs, blocks, live);
  ab::quiet();
  return 0;
}
