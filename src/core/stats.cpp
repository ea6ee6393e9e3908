// stats.cpp — the counters (stats.h).
#include "core/stats.h"

namespace km {
namespace {
// A heap's growth between two samples of the shared peak: a few pages.
constexpr long kPeakStep = long(256) << 10;

std::atomic<long> g_metadata{0}, g_held_peak{0}, g_in_use_peak{0};
// The next in-use sample is due when what pages hold reaches g_sample_mark (stats.h).
std::atomic<long> g_sample_mark{0};
std::atomic<bool> g_sample_due{false};
std::atomic<long> g_huge_bytes{0}, g_huges{0};
std::atomic<long> g_lane_pages_peak[kLaneCount];
std::atomic<HeapStats*> g_all{nullptr};

void raise_to(std::atomic<long>& peak, long v) {
  long cur = peak.load(std::memory_order_relaxed);
  while (v > cur && !peak.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
  }
}

long get(const std::atomic<long>& c) { return c.load(std::memory_order_relaxed); }
void add(std::atomic<long>& c, long v) { c.store(get(c) + v, std::memory_order_relaxed); }   // owner only

// Sum every heap's counters into out (metadata and huge left to the caller) and raise the peaks.
void sum(StatCounters* out) {
  out->page_bytes = out->span_bytes = out->spans = 0;
  for (unsigned l = 0; l < kLaneCount; ++l) out->lane_pages[l] = 0;
  for (HeapStats* st = g_all.load(std::memory_order_acquire); st; st = st->next) {
    out->page_bytes += get(st->page_bytes);
    out->span_bytes += get(st->span_bytes);
    out->spans += get(st->spans);
    for (unsigned l = 0; l < kLaneCount; ++l) out->lane_pages[l] += get(st->lane_pages[l]);
  }
  out->huge_bytes = get(g_huge_bytes);
  long held = stats_held(*out);
  raise_to(g_held_peak, held);
  if (held >= get(g_sample_mark) && !g_sample_due.load(std::memory_order_relaxed))
    g_sample_due.store(true, std::memory_order_relaxed);
  for (unsigned l = 0; l < kLaneCount; ++l) raise_to(g_lane_pages_peak[l], out->lane_pages[l]);
}

// st grew: sample the peak once it holds kPeakStep more than at its last sample.
void grew(HeapStats* st) {
  long now = get(st->page_bytes) + get(st->span_bytes);
  if (now < st->sampled + kPeakStep) {
    if (now < st->sampled) st->sampled = now;   // it shrank: the next step counts from here
    return;
  }
  st->sampled = now;
  StatCounters c;
  sum(&c);
}
}  // namespace

void stats_register(HeapStats* st) {
  HeapStats* head = g_all.load(std::memory_order_relaxed);
  do st->next = head;
  while (!g_all.compare_exchange_weak(head, st, std::memory_order_release, std::memory_order_relaxed));
}

void stats_metadata_add(long bytes) { g_metadata.fetch_add(bytes, std::memory_order_relaxed); }

void stats_page_add(HeapStats* st, unsigned lane, long bytes) {
  add(st->page_bytes, bytes);
  add(st->lane_pages[lane], bytes > 0 ? 1 : -1);
  if (bytes > 0) grew(st);
}

void stats_span_add(HeapStats* st, long bytes, bool block) {
  add(st->span_bytes, bytes);
  if (block) add(st->spans, bytes > 0 ? 1 : -1);
  if (bytes > 0) grew(st);
}

void stats_huge_add(long bytes, bool block) {
  g_huge_bytes.fetch_add(bytes, std::memory_order_relaxed);
  if (block) g_huges.fetch_add(bytes > 0 ? 1 : -1, std::memory_order_relaxed);
  if (bytes > 0) {   // a sample per huge block: small beside its system call
    StatCounters c;
    sum(&c);
  }
}

void stats_counters(StatCounters* out) {
  sum(out);
  out->metadata = get(g_metadata);
  out->huges = get(g_huges);
  out->held_peak = get(g_held_peak);
  out->in_use_peak = get(g_in_use_peak);
  for (unsigned l = 0; l < kLaneCount; ++l) out->lane_pages_peak[l] = get(g_lane_pages_peak[l]);
}

bool stats_take_sample_due() {
  return g_sample_due.load(std::memory_order_relaxed) &&
         g_sample_due.exchange(false, std::memory_order_relaxed);
}

void stats_sample_again() { g_sample_due.store(true, std::memory_order_relaxed); }

void stats_in_use_sampled(long in_use, long held) {
  raise_to(g_in_use_peak, in_use);
  g_sample_mark.store(held + (held / 16 > kPeakStep ? held / 16 : kPeakStep), std::memory_order_relaxed);
}

void stats_reset_peaks(long in_use) {
  StatCounters c;
  sum(&c);
  long held = stats_held(c);
  g_held_peak.store(held, std::memory_order_relaxed);
  g_in_use_peak.store(in_use, std::memory_order_relaxed);
  stats_in_use_sampled(in_use, held);
  g_sample_due.store(false, std::memory_order_relaxed);
}

}  // namespace km
