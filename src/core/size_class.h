// size_class.h — the only size→lane mapping. malloc, free, realloc and usable_size all use it.
//
// Lanes: 16, 32, 48, 64 (multiples of 16), then kLanesPerDoubling lanes between each power of two
// up to kLargestLane: with 4, 80 96 112 128 160 192 224 256 320 ...; with 8, multiples of 16 up to
// 256, then 288 320 ... 512 576 ...; with 1, Kona's 16 32 64 128 ...
// Lane 0 is unused (size 0 maps to the 16-byte lane), so lane indices start at 1.
#pragma once
#include "core/config.h"

namespace km {

namespace sc_detail {
constexpr unsigned log2_floor(size_t x) { return 63u - unsigned(__builtin_clzll(x)); }
constexpr unsigned kStepShift = kLanesPerDoubling == 8 ? 3 : kLanesPerDoubling == 4 ? 2 : kLanesPerDoubling == 2 ? 1 : 0;
// Lanes in steps of 16 up to kSmallTop (16 32 48 64, or 16 .. 128 with 8 lanes per doubling, whose
// steps between 64 and 128 would be 8), or 16 32 64 for power-of-two lanes. Above it, the doublings.
constexpr size_t kSmallTop = kLanesPerDoubling == 8 ? 128 : 64;
constexpr unsigned kSmallLanes = kLanesPerDoubling == 1 ? 3 : unsigned(kSmallTop / 16);
constexpr unsigned kFirstLog = log2_floor(kSmallTop);   // the doublings start above 2^kFirstLog
constexpr unsigned kLastLog = log2_floor(kLargestLane);   // 17 for 128 KiB
}  // namespace sc_detail

constexpr unsigned kLaneCount = 1 + sc_detail::kSmallLanes + (sc_detail::kLastLog - sc_detail::kFirstLog) * kLanesPerDoubling;

// Cell size of every lane, computed once at compile time.
struct LaneTable {
  size_t size[kLaneCount];
  unsigned char small_lane[(1024 / 16) + 1];   // lane of (size+15)/16 for sizes <= 1024
};

constexpr size_t lane_size_formula(unsigned lane) {
  using namespace sc_detail;
  if (lane == 0) return 0;
  if (lane <= kSmallLanes) {
    if (kLanesPerDoubling == 1) return size_t(16) << (lane - 1);
    return size_t(16) * lane;
  }
  unsigned k = lane - kSmallLanes - 1;                 // 0-based above kSmallTop
  unsigned e = kFirstLog + k / kLanesPerDoubling;      // the power of two below
  unsigned j = k % kLanesPerDoubling + 1;              // 1..steps
  return (size_t(1) << e) + j * ((size_t(1) << e) >> kStepShift);
}

// The general mapping, used for sizes above 1024 and to build the table below.
constexpr unsigned lane_of_formula(size_t size) {
  using namespace sc_detail;
  if (size <= kSmallTop) {
    if (size <= 16) return 1;
    if (kLanesPerDoubling == 1) return size <= 32 ? 2 : 3;
    return unsigned((size + 15) / 16);
  }
  unsigned e = log2_floor(size - 1);                   // size in (2^e, 2^(e+1)]
  unsigned j = unsigned(((size - 1) >> (e - kStepShift)) & (kLanesPerDoubling - 1));
  return kSmallLanes + 1 + (e - kFirstLog) * kLanesPerDoubling + j;
}

constexpr LaneTable make_lane_table() {
  LaneTable t{};
  for (unsigned l = 0; l < kLaneCount; ++l) t.size[l] = lane_size_formula(l);
  for (unsigned g = 0; g <= 1024 / 16; ++g) t.small_lane[g] = (unsigned char)lane_of_formula(g * 16);
  return t;
}
inline constexpr LaneTable kLanes = make_lane_table();

static_assert(kLanes.size[kLaneCount - 1] == kLargestLane, "the last lane is the largest lane");
static_assert(lane_of_formula(kLargestLane) == kLaneCount - 1);
static_assert(kLanes.size[1] == 16 && lane_of_formula(1) == 1 && lane_of_formula(17) == 2);
constexpr bool lanes_are_sorted_and_aligned() {
  for (unsigned l = 2; l < kLaneCount; ++l)
    if (kLanes.size[l] <= kLanes.size[l - 1] || kLanes.size[l] % kMinAlign != 0) return false;
  return true;
}
static_assert(lanes_are_sorted_and_aligned());
constexpr bool every_power_of_two_is_a_lane() {
  for (size_t p = 16; p <= kLargestLane; p *= 2)
    if (kLanes.size[lane_of_formula(p)] != p) return false;
  return true;
}
static_assert(every_power_of_two_is_a_lane(), "lane_of_aligned takes the lane of the alignment");

// size (1..kLargestLane) → lane. Sizes up to 1024 take one table load.
KM_INLINE unsigned lane_of(size_t size) {
  if (KM_LIKELY(size <= 1024)) return kLanes.small_lane[(size + 15) >> 4];
  return lane_of_formula(size);
}
KM_INLINE size_t lane_size(unsigned lane) { return kLanes.size[lane]; }

// The lane for an aligned request (align a power of two, 16 < align <= 4096): the smallest lane that
// fits `size` and whose cell size is a multiple of `align`. Cells sit at multiples of their size from a
// 64 KiB-aligned page start, so such a cell is aligned to `align`. 0 if no lane fits.
inline unsigned lane_of_aligned(size_t size, size_t align) {
  // Every power of two from 16 to the largest lane is a lane: a request no larger than its
  // alignment takes the lane of the alignment itself, with no search.
  if (size <= align) return align <= kLargestLane ? lane_of(align) : 0;
  if (size > kLargestLane) return 0;
  for (unsigned l = lane_of(size); l < kLaneCount; ++l)
    if ((kLanes.size[l] & (align - 1)) == 0) return l;
  return 0;
}

// How many 64 KiB slots a page of this lane spans: one for cells up to 8 KiB, more for bigger cells
// so that a page holds at least kMinCellsPerPage of them (at most 16 slots, 1 MiB).
constexpr unsigned slots_for_lane(unsigned lane) {
  size_t need = lane_size_formula(lane) * kMinCellsPerPage;
  size_t slots = (need + kSlotSize - 1) / kSlotSize;
  return unsigned(slots < 1 ? 1 : slots > 16 ? 16 : slots);
}

}  // namespace km
