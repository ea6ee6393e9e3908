// The size→lane mapping, checked for every size up to the largest lane.
#include <gtest/gtest.h>

#include "core/size_class.h"

namespace {

TEST(SizeClass, EverySizeMapsToTheSmallestLaneThatFits) {
  for (size_t size = 1; size <= km::kLargestLane; ++size) {
    unsigned lane = km::lane_of(size);
    ASSERT_GE(lane, 1u) << size;
    ASSERT_LT(lane, km::kLaneCount) << size;
    ASSERT_GE(km::lane_size(lane), size) << "lane too small for " << size;
    if (lane > 1) {
      ASSERT_LT(km::lane_size(lane - 1), size) << "a smaller lane fits " << size;
    }
    ASSERT_EQ(lane, km::lane_of_formula(size)) << "table and formula disagree at " << size;
  }
}

TEST(SizeClass, LanesAreSixteenByteMultiplesAndGrowGeometrically) {
  EXPECT_EQ(km::lane_size(1), 16u);
  EXPECT_EQ(km::lane_size(km::kLaneCount - 1), km::kLargestLane);
  for (unsigned l = 1; l < km::kLaneCount; ++l) {
    EXPECT_EQ(km::lane_size(l) % 16, 0u);
    if (km::lane_size(l - 1) >= km::sc_detail::kSmallTop) {   // above the steps of 16 bytes, waste
                                                              // is bounded by the lanes per doubling
      double ratio = double(km::lane_size(l)) / double(km::lane_size(l - 1));
      EXPECT_LE(ratio, 1.0 + 1.0 / km::kLanesPerDoubling + 1e-9) << km::lane_size(l);
    }
  }
}

TEST(SizeClass, ZeroSizeUsesTheSmallestLane) { EXPECT_EQ(km::lane_of(0), 1u); }

TEST(SizeClass, AlignedLanesGiveMultiplesOfTheAlignment) {
  for (size_t align = 32; align <= 4096; align *= 2) {
    for (size_t size = 1; size <= 3 * align && size <= km::kLargestLane; size += 7) {
      unsigned lane = km::lane_of_aligned(size, align);
      ASSERT_NE(lane, 0u);
      EXPECT_EQ(km::lane_size(lane) % align, 0u) << size << " @" << align;
      EXPECT_GE(km::lane_size(lane), size);
    }
  }
}

TEST(SizeClass, PagesHoldSeveralCellsAndFitASegment) {
  for (unsigned l = 1; l < km::kLaneCount; ++l) {
    unsigned slots = km::slots_for_lane(l);
    EXPECT_GE(slots, 1u);
    EXPECT_LE(slots, 16u);
    EXPECT_GE((size_t(slots) << km::kSlotShift) / km::lane_size(l), 8u) << km::lane_size(l);
  }
}

}  // namespace
