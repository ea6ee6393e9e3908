// kmem_bench — the explicit allocators against malloc/free on the same work.
//
//   Small/*   many small objects (16..128 bytes, a fixed mixed sequence): allocate N, touch each,
//             release all. malloc/free vs arena (kmarenaa + kmarenar) vs lin (kmlina + kmlinx).
//   Fixed/*   N objects of one size (64 bytes): malloc/free vs pool (kmpoola/kmpoolf) vs arena.
//   Fifo/*    a queue of W in-flight messages (16..256 bytes): each step enqueues one and dequeues
//             the oldest. malloc + memcpy in / memcpy out + free vs kmfifopush/kmfifoshift.
//
// The malloc/free baselines call plain malloc and free, so the same binary measures glibc (no
// preload) and kmalloc (LD_PRELOAD=libkmalloc.so). The kmem side is linked statically from the core.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "kmalloc.h"

namespace {

constexpr int kN = 10000;

// A fixed mixed sequence of small sizes, the same for every run and allocator.
const std::vector<size_t>& small_sizes() {
  static const std::vector<size_t> sizes = [] {
    std::vector<size_t> v(kN);
    unsigned x = 12345;
    for (auto& s : v) {
      x = x * 1103515245u + 12345u;
      s = 16 + (x >> 16) % 113;  // 16..128
    }
    return v;
  }();
  return sizes;
}

inline void touch(void* p) { static_cast<volatile char*>(p)[0] = 1; }

void Small_MallocFree(benchmark::State& st) {
  const auto& sz = small_sizes();
  std::vector<void*> v(kN);
  for (auto _ : st) {
    for (int i = 0; i < kN; i++) {
      v[i] = malloc(sz[i]);
      touch(v[i]);
    }
    benchmark::DoNotOptimize(v.data());
    for (int i = 0; i < kN; i++) free(v[i]);
  }
  st.SetItemsProcessed(st.iterations() * kN);
}
BENCHMARK(Small_MallocFree);

void Small_Arena(benchmark::State& st) {
  const auto& sz = small_sizes();
  kmarena* a = kmarenai(64 * 1024);
  std::vector<void*> v(kN);
  for (auto _ : st) {
    for (int i = 0; i < kN; i++) {
      v[i] = kmarenaa(a, sz[i]);
      touch(v[i]);
    }
    benchmark::DoNotOptimize(v.data());
    kmarenar(a);
  }
  kmarenax(a);
  st.SetItemsProcessed(st.iterations() * kN);
}
BENCHMARK(Small_Arena);

void Small_Lin(benchmark::State& st) {
  const auto& sz = small_sizes();
  std::vector<void*> v(kN);
  for (auto _ : st) {
    void* mark = kmlini();
    for (int i = 0; i < kN; i++) {
      v[i] = kmlina(sz[i]);
      touch(v[i]);
    }
    benchmark::DoNotOptimize(v.data());
    kmlinx(mark);
  }
  st.SetItemsProcessed(st.iterations() * kN);
}
BENCHMARK(Small_Lin);

void Fixed_MallocFree(benchmark::State& st) {
  std::vector<void*> v(kN);
  for (auto _ : st) {
    for (int i = 0; i < kN; i++) {
      v[i] = malloc(64);
      touch(v[i]);
    }
    benchmark::DoNotOptimize(v.data());
    for (int i = 0; i < kN; i++) free(v[i]);
  }
  st.SetItemsProcessed(st.iterations() * kN);
}
BENCHMARK(Fixed_MallocFree);

void Fixed_Pool(benchmark::State& st) {
  kmpool* pool = kmpooli(nullptr, 64, kN);
  std::vector<void*> v(kN);
  for (auto _ : st) {
    for (int i = 0; i < kN; i++) {
      v[i] = kmpoola(pool);
      touch(v[i]);
    }
    benchmark::DoNotOptimize(v.data());
    for (int i = 0; i < kN; i++) kmpoolf(v[i]);
  }
  kmpoolx(pool);
  st.SetItemsProcessed(st.iterations() * kN);
}
BENCHMARK(Fixed_Pool);

void Fixed_Arena(benchmark::State& st) {
  kmarena* a = kmarenai(64 * 1024);
  std::vector<void*> v(kN);
  for (auto _ : st) {
    for (int i = 0; i < kN; i++) {
      v[i] = kmarenaa(a, 64);
      touch(v[i]);
    }
    benchmark::DoNotOptimize(v.data());
    kmarenar(a);
  }
  kmarenax(a);
  st.SetItemsProcessed(st.iterations() * kN);
}
BENCHMARK(Fixed_Arena);

// ---- FIFO -------------------------------------------------------------------------------------------

constexpr int kSteps = 10000;

size_t msg_size(unsigned i) { return 16 + (i * 2654435761u >> 8) % 241; }  // 16..256

void Fifo_MallocFree(benchmark::State& st) {
  const int window = static_cast<int>(st.range(0));
  unsigned char msg[256], out[256];
  std::memset(msg, 7, sizeof msg);
  std::vector<void*> ring(window);
  std::vector<size_t> len(window);
  for (auto _ : st) {
    unsigned seq = 0;
    for (int i = 0; i < window; i++, seq++) {
      len[i] = msg_size(seq);
      ring[i] = malloc(len[i]);
      std::memcpy(ring[i], msg, len[i]);
    }
    for (int s = 0; s < kSteps; s++, seq++) {
      int slot = s % window;  // the oldest message
      std::memcpy(out, ring[slot], len[slot]);
      benchmark::DoNotOptimize(out);
      free(ring[slot]);
      len[slot] = msg_size(seq);
      ring[slot] = malloc(len[slot]);
      std::memcpy(ring[slot], msg, len[slot]);
    }
    for (int i = 0; i < window; i++) free(ring[i]);
  }
  st.SetItemsProcessed(st.iterations() * kSteps);
}
BENCHMARK(Fifo_MallocFree)->Arg(16)->Arg(256);

void Fifo_Kmfifo(benchmark::State& st) {
  const int window = static_cast<int>(st.range(0));
  unsigned char msg[256], out[256];
  std::memset(msg, 7, sizeof msg);
  kmfifo* q = kmfifoi(kmfifop2(static_cast<size_t>(window) * 258), 0);
  for (auto _ : st) {
    unsigned seq = 0;
    for (int i = 0; i < window; i++, seq++) kmfifopush(q, msg, msg_size(seq));
    size_t n;
    for (int s = 0; s < kSteps; s++, seq++) {
      kmfifoshift(q, out, &n, sizeof out);
      benchmark::DoNotOptimize(out);
      kmfifopush(q, msg, msg_size(seq));
    }
    while (kmfifoshift(q, out, &n, sizeof out) == 0) {
    }
  }
  kmfifox(q);
  st.SetItemsProcessed(st.iterations() * kSteps);
}
BENCHMARK(Fifo_Kmfifo)->Arg(16)->Arg(256);

}  // namespace

BENCHMARK_MAIN();
