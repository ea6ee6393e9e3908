// lanes_shape.cpp — the size -> lane map of one lanes_per_doubling choice, over every request size
// up to the largest lane. Built once for each choice (tests/unit/meson.build): the library is built
// with one, so a formula broken for the others would go unseen until someone chose one.
#include <cstdio>

#include "core/size_class.h"

int main() {
  using km::lane_of;
  using km::lane_size;
  unsigned bad = 0;
  auto fail = [&](const char* what, size_t size, unsigned lane) {
    if (bad++ < 5) std::printf("  %s: size %zu, lane %u (%zu bytes)\n", what, size, lane, lane_size(lane));
  };
  for (size_t size = 0; size <= km::kLargestLane; ++size) {
    unsigned lane = lane_of(size);
    if (lane < 1 || lane >= km::kLaneCount) fail("no lane", size, lane);
    else if (lane_size(lane) < size) fail("too small", size, lane);
    else if (lane > 1 && lane_size(lane - 1) >= size) fail("not the smallest that fits", size, lane);
  }
  for (unsigned lane = 1; lane < km::kLaneCount; ++lane)
    if (lane_of(lane_size(lane)) != lane) fail("its own size maps elsewhere", lane_size(lane), lane);
  std::printf("lanes per doubling %u: %u lanes, %s\n", km::kLanesPerDoubling, km::kLaneCount - 1,
              bad ? "FAILED" : "ok");
  return bad != 0;
}
