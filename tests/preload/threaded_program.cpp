// A threaded C++ program for the preload tests (built without kmalloc, run under LD_PRELOAD):
// worker threads build and exchange std::string / std::map / std::vector data through a queue,
// like a small server; prints a checksum that must match the glibc run.
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  int threads = argc > 1 ? std::atoi(argv[1]) : 4;
  int messages = argc > 2 ? std::atoi(argv[2]) : 20000;
  std::mutex m;
  std::condition_variable cv;
  std::deque<std::unique_ptr<std::vector<std::string>>> q;
  bool done = false;
  unsigned long long sum = 0;
  std::vector<std::thread> producers, consumers;
  for (int t = 0; t < threads; ++t) {
    producers.emplace_back([&, t] {
      for (int i = 0; i < messages; ++i) {
        auto msg = std::make_unique<std::vector<std::string>>();
        for (int k = 0; k < 1 + (i % 9); ++k)
          msg->push_back(std::string(size_t(1 + (i * 7 + k * 13) % 300), char('a' + (t + k) % 26)));
        std::lock_guard<std::mutex> g(m);
        q.push_back(std::move(msg));
        cv.notify_one();
      }
    });
  }
  for (int t = 0; t < threads; ++t) {
    consumers.emplace_back([&] {
      std::map<size_t, unsigned long long> local;
      for (;;) {
        std::unique_ptr<std::vector<std::string>> msg;
        {
          std::unique_lock<std::mutex> g(m);
          cv.wait(g, [&] { return !q.empty() || done; });
          if (q.empty()) break;
          msg = std::move(q.front());
          q.pop_front();
        }
        for (const auto& s : *msg) local[s.size()] += static_cast<unsigned char>(s[0]);
      }   // msg is freed here, on another thread than the one that built it
      std::lock_guard<std::mutex> g(m);
      for (auto& [k, v] : local) sum += k * v;
    });
  }
  for (auto& p : producers) p.join();
  {
    std::lock_guard<std::mutex> g(m);
    done = true;
    cv.notify_all();
  }
  for (auto& c : consumers) c.join();
  std::printf("%llu\n", sum);
  return 0;
}
