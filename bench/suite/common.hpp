// common.hpp — what every workload of the suite shares: argument parsing, a fixed-seed RNG, block
// stamps that make a corrupting allocator fail the self-check, and the one RESULT line the runner
// (scripts/benchlib/runner.py) and the smoke tests (tests/bench/) parse.
//
// Workloads call only plain malloc/free/realloc/new/delete, so LD_PRELOAD chooses the allocator. They
// link nothing but libc/libstdc++ and never call the allocator's own API.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace kmb {

// ---- arguments ----------------------------------------------------------------------------------
// "--key value" or "--key=value"; "--smoke" picks each workload's tiny defaults. Unknown keys are an
// error, so a typo in the runner's table cannot silently run the default.
class Args {
 public:
  Args(int argc, char** argv, std::vector<std::string> known) : known_(std::move(known)) {
    known_.push_back("smoke");
    known_.push_back("scale");
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (a == "-h" || a == "--help") usage(argv[0]);
      if (a.rfind("--", 0) != 0) die(argv[0], ("unexpected argument " + a).c_str());
      a = a.substr(2);
      std::string v;
      if (auto eq = a.find('='); eq != std::string::npos) {
        v = a.substr(eq + 1);
        a = a.substr(0, eq);
      } else if (a == "smoke") {
        v = "1";
      } else if (i + 1 < argc) {
        v = argv[++i];
      } else {
        die(argv[0], ("missing value for --" + a).c_str());
      }
      bool ok = false;
      for (auto& k : known_) ok |= (k == a);
      if (!ok) die(argv[0], ("unknown option --" + a).c_str());
      keys_.push_back(a);
      vals_.push_back(v);
    }
    smoke_ = get_raw("smoke") != nullptr;
    const char* s = get_raw("scale");
    scale_ = s ? std::atof(s) : 1.0;
    if (!(scale_ > 0)) die(argv[0], "--scale must be > 0");
  }
  bool smoke() const { return smoke_; }
  // An integer option: explicit value, else the smoke default under --smoke, else the full default.
  // Iteration counts pass scaled=true so --scale multiplies them (never below 1).
  long num(const char* key, long full, long smoke_default, bool scaled = false) const {
    if (const char* v = get_raw(key)) return std::strtol(v, nullptr, 0);
    long n = smoke_ ? smoke_default : full;
    if (scaled) {
      n = static_cast<long>(static_cast<double>(n) * scale_);
      if (n < 1) n = 1;
    }
    return n;
  }
  std::string str(const char* key, const char* def) const {
    const char* v = get_raw(key);
    return v ? v : def;
  }

 private:
  const char* get_raw(const char* key) const {
    for (size_t i = keys_.size(); i-- > 0;)
      if (keys_[i] == key) return vals_[i].c_str();
    return nullptr;
  }
  [[noreturn]] void usage(const char* prog) const {
    std::fprintf(stderr, "usage: %s [--smoke] [--scale F]", prog);
    for (auto& k : known_)
      if (k != "smoke" && k != "scale") std::fprintf(stderr, " [--%s N]", k.c_str());
    std::fprintf(stderr, "\n");
    std::exit(0);
  }
  [[noreturn]] static void die(const char* prog, const char* msg) {
    std::fprintf(stderr, "%s: %s\n", prog, msg);
    std::exit(64);
  }
  std::vector<std::string> known_, keys_, vals_;
  bool smoke_ = false;
  double scale_ = 1.0;
};

// ---- random numbers -----------------------------------------------------------------------------
// xoshiro256** seeded by splitmix64: fast, and the same sequence on every machine and allocator.
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (auto& w : s_) {
      seed += 0x9e3779b97f4a7c15ull;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      w = z ^ (z >> 31);
    }
  }
  uint64_t next() {
    const uint64_t r = rotl(s_[1] * 5, 7) * 9, t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return r;
  }
  // Uniform in [0, n) without division bias worth caring about (Lemire's multiply-shift).
  uint64_t below(uint64_t n) { return static_cast<uint64_t>((static_cast<__uint128_t>(next()) * n) >> 64); }
  uint64_t range(uint64_t lo, uint64_t hi) { return lo + below(hi - lo + 1); }  // inclusive
  // Log-uniform in [lo, hi]: as many blocks per doubling, the shape of real size distributions.
  uint64_t log_range(uint64_t lo, uint64_t hi) {
    const int a = 63 - __builtin_clzll(lo), b = 63 - __builtin_clzll(hi);
    const int e = a + static_cast<int>(below(static_cast<uint64_t>(b - a + 1)));
    uint64_t v = (1ull << e) + below(1ull << e);
    return v < lo ? lo : v > hi ? hi : v;
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

inline uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return x | 1;  // never zero, so a zeroed block never looks stamped
}

// ---- block stamps -------------------------------------------------------------------------------
// A stamp writes a tag-derived word at both ends of a block (or every byte of a block under 16 bytes);
// verify() reads them back before the block is freed. Two live blocks that overlap, a block handed out
// twice, or a realloc that loses contents all break a stamp. Writing both ends also makes every block
// really used, so no compiler can drop the allocation.
inline void stamp(void* p, size_t n, uint64_t tag) {
  auto* b = static_cast<unsigned char*>(p);
  if (n >= 16) {
    const uint64_t head = tag, tail = mix(tag ^ n);
    std::memcpy(b, &head, 8);
    std::memcpy(b + n - 8, &tail, 8);
  } else {
    for (size_t i = 0; i < n; ++i) b[i] = static_cast<unsigned char>(tag + i);
  }
}
inline bool verify(const void* p, size_t n, uint64_t tag) {
  auto* b = static_cast<const unsigned char*>(p);
  if (n >= 16) {
    uint64_t head, tail;
    std::memcpy(&head, b, 8);
    std::memcpy(&tail, b + n - 8, 8);
    return head == tag && tail == mix(tag ^ n);
  }
  for (size_t i = 0; i < n; ++i)
    if (b[i] != static_cast<unsigned char>(tag + i)) return false;
  return true;
}
// Self-describing stamps for blocks that travel between threads (n in [16, 2^24)): the head word
// carries the size, so whoever frees the block can check it without a side table.
inline void stamp_self(void* p, size_t n, uint64_t rnd) {
  stamp(p, n, (static_cast<uint64_t>(n) << 40) | (rnd & ((1ull << 40) - 1)));
}
// Returns the block's size, or 0 if the stamp is broken.
inline size_t verify_self(const void* p) {
  uint64_t head;
  std::memcpy(&head, p, 8);
  const size_t n = head >> 40;
  if (n < 16 || !verify(p, n, head)) return 0;
  return n;
}

// Keep a value alive in the compiler's eyes (the Google Benchmark idiom, without the dependency).
template <class T>
inline void escape(T const& v) {
  asm volatile("" : : "r"(v) : "memory");
}

// ---- timing and the result line -----------------------------------------------------------------
inline double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Spin until every thread has arrived, so the timed phase starts together (no std::barrier: it may
// allocate, and we want the allocator's work only).
class StartLine {
 public:
  explicit StartLine(int n) : left_(n) {}
  void arrive_and_wait() {
    left_.fetch_sub(1, std::memory_order_acq_rel);
    while (left_.load(std::memory_order_acquire) > 0) __builtin_ia32_pause();
  }

 private:
  std::atomic<int> left_;
};

// Runs body(t, start) on n threads (t = 0..n-1). Each body calls start.arrive_and_wait() once its
// set-up is done; the clock starts when all have, and stops when the last thread is joined. Returns the
// seconds; *all_ok tells whether every body returned true (its self-check passed).
template <class Body>
double run_timed(int n, Body body, bool* all_ok) {
  StartLine start(n + 1);
  std::vector<char> ok(static_cast<size_t>(n), 0);
  std::vector<std::thread> pool;
  for (int t = 0; t < n; ++t)
    pool.emplace_back([&, t] { ok[static_cast<size_t>(t)] = body(t, start) ? 1 : 0; });
  start.arrive_and_wait();
  const double t0 = now_s();
  for (auto& th : pool) th.join();
  const double secs = now_s() - t0;
  *all_ok = true;
  for (char c : ok) *all_ok &= c != 0;
  return secs;
}

// One line per run: "RESULT workload=NAME threads=T ops=N seconds=S mops=M check=ok|FAILED [extra]".
// Returns the exit status: 0 when the self-check passed, 2 when it failed.
inline int report(const char* workload, int threads, double ops, double seconds, bool ok,
                  const std::string& extra = "") {
  const double mops = seconds > 0 ? ops / seconds / 1e6 : 0;
  std::printf("RESULT workload=%s threads=%d ops=%.0f seconds=%.4f mops=%.3f check=%s%s%s\n", workload,
              threads, ops, seconds, mops, ok ? "ok" : "FAILED", extra.empty() ? "" : " ", extra.c_str());
  std::fflush(stdout);
  if (!ok) std::fprintf(stderr, "%s: self-check FAILED: block contents were corrupted\n", workload);
  return ok ? 0 : 2;
}

}  // namespace kmb
