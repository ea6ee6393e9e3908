// retention.cpp — an A/B program beside the built-in workloads (not one of them): memory that other
// threads free into the heap of a thread that stays alive and idle, or that exited.
//
// Two owner threads each allocate half of 545 MB (at scale 1) of 100-byte blocks and write them; then
// they block on a condition variable ("idle", the default) or exit ("exit"). Two other threads free
// 98% of the blocks at random. The program samples its RSS (/proc/self/statm) for 2 s, then the main
// thread allocates as much again, and finally the owners are released. A size-segregated allocator
// whose heaps only their owner may touch keeps an idle owner's freed cells resident until the owner
// runs again. Usage: ab_retention [SCALE [idle|exit]]
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "common.h"

namespace {

long rss_mib() {
  long pages = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return resident * 4096 / (1 << 20);
}

// Every block still held reads as it was written (the survivors, through every give-back).
bool intact(const std::vector<void*>& v, unsigned char fill) {
  for (void* p : v)
    if (p)
      for (size_t i = 0; i < 100; ++i)
        if (static_cast<unsigned char*>(p)[i] != fill) return false;
  return true;
}

std::vector<void*> allocate(size_t bytes, unsigned char fill) {
  std::vector<void*> v;
  v.reserve(bytes / 100 + 1);
  for (size_t done = 0; done < bytes; done += 100) v.push_back(ab::take(100, fill));
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  const double s = ab::scale(argc, argv);
  const bool idle = !(argc > 2 && std::string(argv[2]) == "exit");
  const size_t per_owner = size_t(545.0 * s * (1 << 20) / 2);
  std::vector<void*> blocks[2];
  std::mutex mu;
  std::condition_variable cv;
  bool released = false;
  int ready = 0;

  std::thread owners[2];
  for (int i = 0; i < 2; ++i)
    owners[i] = std::thread([&, i] {
      std::vector<void*> v = allocate(per_owner, 0x51);
      std::unique_lock<std::mutex> l(mu);
      blocks[i] = std::move(v);
      ++ready;
      cv.notify_all();
      if (idle) cv.wait(l, [&] { return released; });   // blocked: no allocator call
    });
  {
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [&] { return ready == 2; });
  }
  if (!idle)
    for (auto& t : owners) t.join();
  std::printf("retention (%s owners): allocated, rss %ld MiB\n", idle ? "idle" : "exited", rss_mib());

  std::thread freers[2];
  for (int f = 0; f < 2; ++f)
    freers[f] = std::thread([&, f] {
      ab::Rng rng(100 + f);
      for (auto& v : blocks)
        for (size_t i = size_t(f); i < v.size(); i += 2)
          if (rng.chance(98)) {
            std::free(v[i]);
            v[i] = nullptr;
          }
    });
  for (auto& t : freers) t.join();
  std::printf("retention: 98%% freed, rss %ld MiB\n", rss_mib());
  for (int ms : {100, 400, 500, 1000}) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    std::printf("retention: rss %ld MiB\n", rss_mib());
  }
  std::vector<void*> again = allocate(2 * per_owner, 0x52);
  std::printf("retention: allocated as much again, rss %ld MiB\n", rss_mib());
  {
    std::lock_guard<std::mutex> l(mu);
    released = true;
  }
  cv.notify_all();
  if (idle)
    for (auto& t : owners) t.join();
  std::printf("retention: owners released, rss %ld MiB\n", rss_mib());
  bool ok = intact(blocks[0], 0x51) && intact(blocks[1], 0x51) && intact(again, 0x52);
  if (!ok) std::fprintf(stderr, "retention: a block was overwritten\n");
  ab::quiet();
  return ok ? 0 : 1;
}
