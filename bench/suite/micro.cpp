// micro — Google Benchmark micro-benchmarks of single allocator calls.
//
// Stresses: the fast paths in isolation, with a hot cache and no contention:
//   malloc_free/N     one malloc+free pair of N bytes, for one size in each size-class region
//   batch/N           1000 mallocs of N bytes, then 1000 frees (free-list pop/push without reuse)
//   calloc/N          calloc+free (is a recycled block zeroed cheaply, is fresh memory not re-zeroed)
//   realloc_inplace/N realloc between N and N+8 bytes, which every allocator can do in place
//   aligned/A         posix_memalign(A, 64)+free
//   aligned_256/A     posix_memalign(A, 256)+free at alignments above the page: compare with
//                     malloc_free/256 (issue 9 asks for at most 2x)
//   new_delete/N      operator new/delete (sized delete where the compiler uses it)
// Every block is written and read back; after the run the program prints a RESULT line whose check
// says whether every read saw what was written.
#include <benchmark/benchmark.h>

#include "common.hpp"

namespace {

std::atomic<bool> g_ok{true};

inline void use(void* p, size_t n) {
  auto* b = static_cast<unsigned char*>(p);
  b[0] = static_cast<unsigned char>(n);
  b[n - 1] = static_cast<unsigned char>(n >> 3);
  benchmark::DoNotOptimize(b);
  benchmark::ClobberMemory();
  if (b[0] != static_cast<unsigned char>(n) || b[n - 1] != static_cast<unsigned char>(n >> 3))
    g_ok.store(false, std::memory_order_relaxed);
}

void malloc_free(benchmark::State& st) {
  const size_t n = static_cast<size_t>(st.range(0));
  for (auto _ : st) {
    void* p = std::malloc(n);
    use(p, n);
    std::free(p);
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(malloc_free)->Arg(8)->Arg(16)->Arg(32)->Arg(48)->Arg(64)->Arg(80)->Arg(128)->Arg(256)->Arg(512)
    ->Arg(1024)->Arg(4096)->Arg(16384)->Arg(65536)->Arg(262144);

void batch(benchmark::State& st) {
  const size_t n = static_cast<size_t>(st.range(0));
  void* ps[1000];
  for (auto _ : st) {
    for (auto& p : ps) {
      p = std::malloc(n);
      use(p, n);
    }
    for (auto& p : ps) std::free(p);
  }
  st.SetItemsProcessed(st.iterations() * 1000);
}
BENCHMARK(batch)->Arg(16)->Arg(64)->Arg(256)->Arg(1024);

void calloc_free(benchmark::State& st) {
  const size_t n = static_cast<size_t>(st.range(0));
  for (auto _ : st) {
    auto* p = static_cast<unsigned char*>(std::calloc(1, n));
    if (p[n / 2] != 0) g_ok.store(false, std::memory_order_relaxed);
    use(p, n);
    std::free(p);
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(calloc_free)->Name("calloc")->Arg(64)->Arg(1024)->Arg(16384)->Arg(1 << 20);

void realloc_inplace(benchmark::State& st) {
  const size_t n = static_cast<size_t>(st.range(0));
  void* p = std::malloc(n + 8);
  for (auto _ : st) {
    p = std::realloc(p, n + 8);
    use(p, n + 8);
    p = std::realloc(p, n);
    use(p, n);
  }
  std::free(p);
  st.SetItemsProcessed(st.iterations() * 2);
}
BENCHMARK(realloc_inplace)->Arg(40)->Arg(1000)->Arg(100000);

void aligned(benchmark::State& st) {
  const size_t a = static_cast<size_t>(st.range(0));
  for (auto _ : st) {
    void* p = nullptr;
    if (posix_memalign(&p, a, 64) != 0 || (reinterpret_cast<uintptr_t>(p) & (a - 1)))
      g_ok.store(false, std::memory_order_relaxed);
    use(p, 64);
    std::free(p);
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(aligned)->Arg(16)->Arg(64)->Arg(4096);

void aligned_256(benchmark::State& st) {
  const size_t a = static_cast<size_t>(st.range(0));
  for (auto _ : st) {
    void* p = nullptr;
    if (posix_memalign(&p, a, 256) != 0 || (reinterpret_cast<uintptr_t>(p) & (a - 1)))
      g_ok.store(false, std::memory_order_relaxed);
    use(p, 256);
    std::free(p);
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(aligned_256)->Arg(8192)->Arg(65536);

struct Obj48 {
  uint64_t w[6];
};
void new_delete(benchmark::State& st) {
  for (auto _ : st) {
    auto* o = new Obj48;
    o->w[0] = 1;
    benchmark::DoNotOptimize(o);
    benchmark::ClobberMemory();
    delete o;
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(new_delete)->Name("new_delete/48");

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 64;
  const double t0 = kmb::now_s();
  const size_t n = benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return kmb::report("micro", 1, static_cast<double>(n), kmb::now_s() - t0, g_ok.load());
}
