// stats.cpp — the counters (stats.h).
#include "core/stats.h"

#include <atomic>


namespace km {
namespace {
std::atomic<long> g_metadata{0}, g_page_bytes{0}, g_peak{0};
std::atomic<long> g_span_bytes{0}, g_spans{0}, g_huge_bytes{0}, g_huges{0};
std::atomic<long> g_lane_pages[kLaneCount], g_lane_pages_peak[kLaneCount];

void raise_to(std::atomic<long>& peak, long v) {
  long cur = peak.load(std::memory_order_relaxed);
  while (v > cur && !peak.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
  }
}

}  // namespace

void stats_metadata_add(long bytes) { g_metadata.fetch_add(bytes, std::memory_order_relaxed); }

void stats_page_add(unsigned lane, long bytes) {
  g_page_bytes.fetch_add(bytes, std::memory_order_relaxed);
  long pages = g_lane_pages[lane].fetch_add(bytes > 0 ? 1 : -1, std::memory_order_relaxed);
  if (bytes > 0) {
    raise_to(g_lane_pages_peak[lane], pages + 1);
    stats_peak_update();
  }
}

void stats_span_add(long bytes, bool block) {
  g_span_bytes.fetch_add(bytes, std::memory_order_relaxed);
  if (block) g_spans.fetch_add(bytes > 0 ? 1 : -1, std::memory_order_relaxed);
  if (bytes > 0) stats_peak_update();
}
void stats_huge_add(long bytes, bool block) {
  g_huge_bytes.fetch_add(bytes, std::memory_order_relaxed);
  if (block) g_huges.fetch_add(bytes > 0 ? 1 : -1, std::memory_order_relaxed);
  if (bytes > 0) stats_peak_update();
}

void stats_peak_update() {
  raise_to(g_peak, g_page_bytes.load(std::memory_order_relaxed) + g_span_bytes.load(std::memory_order_relaxed) +
                       g_huge_bytes.load(std::memory_order_relaxed));
}

void stats_counters(StatCounters* out) {
  out->metadata = g_metadata.load(std::memory_order_relaxed);
  out->page_bytes = g_page_bytes.load(std::memory_order_relaxed);
  out->peak = g_peak.load(std::memory_order_relaxed);
  out->span_bytes = g_span_bytes.load(std::memory_order_relaxed);
  out->spans = g_spans.load(std::memory_order_relaxed);
  out->huge_bytes = g_huge_bytes.load(std::memory_order_relaxed);
  out->huges = g_huges.load(std::memory_order_relaxed);
  for (unsigned l = 0; l < kLaneCount; ++l) {
    out->lane_pages[l] = g_lane_pages[l].load(std::memory_order_relaxed);
    out->lane_pages_peak[l] = g_lane_pages_peak[l].load(std::memory_order_relaxed);
  }
}

}  // namespace km
