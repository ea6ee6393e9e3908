// config.h — the compile-time shape of the allocator: segments, slots, lanes. One place to change.
#pragma once
#include <cstddef>
#include <cstdint>

#ifndef KM_LANES_PER_DOUBLING
#define KM_LANES_PER_DOUBLING 4
#endif
#ifndef KM_SECURE_DEFAULT
#define KM_SECURE_DEFAULT 0
#endif

#define KM_LIKELY(x) __builtin_expect(!!(x), 1)
#define KM_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define KM_INLINE inline __attribute__((always_inline))
#define KM_NOINLINE __attribute__((noinline))
#define KM_COLD __attribute__((cold, noinline))
#define KM_EXPORT __attribute__((visibility("default")))

// The fast paths compare words that other threads may write (a page's owner, a segment map byte)
// with one instruction that reads memory: an aligned load is atomic on x86-64, and the asm keeps the
// compiler from treating it as a plain, unshared read. A relaxed atomic load does the same but never
// folds into the compare: one instruction more on free's path for each. ThreadSanitizer gets the
// atomic load, so that it sees the access.
#if defined(__x86_64__) && !defined(__SANITIZE_THREAD__)
#define KM_ASM_COMPARE 1
#endif

namespace km {

// A segment is an aligned 4 MiB mapping owned by one thread heap; the address of any cell, masked,
// gives its segment header, and the slot index gives its page: free() finds metadata in O(1).
constexpr unsigned kSegmentShift = 22;
constexpr size_t kSegmentSize = size_t(1) << kSegmentShift;
// A segment is cut into 64 KiB slots; slot 0 holds the segment header. A lane page spans 1..16 slots.
constexpr unsigned kSlotShift = 16;
constexpr size_t kSlotSize = size_t(1) << kSlotShift;
constexpr unsigned kSlotsPerSegment = unsigned(kSegmentSize / kSlotSize);   // 64
constexpr unsigned kFirstSlot = 1;                                          // slot 0 is the header

// Every malloc result is aligned to 16; the smallest cell holds the free-list link and a free tag.
constexpr size_t kMinAlign = 16;
// Requests above the largest lane go to the large-block fallback (mmap per block). 128 KiB: below
// it, lanes of 4 per doubling waste at most 20%; above it, a block is at least 32 OS pages and a
// mapping of its own costs little more than its page faults (see README, "Choosing the lanes").
constexpr size_t kLargestLane = size_t(128) << 10;
// Lane pages aim to hold at least this many cells, so big lanes still amortise a page's set-up.
constexpr size_t kMinCellsPerPage = 8;

constexpr unsigned kLanesPerDoubling = KM_LANES_PER_DOUBLING;
static_assert(kLanesPerDoubling == 1 || kLanesPerDoubling == 2 || kLanesPerDoubling == 4 ||
                  kLanesPerDoubling == 8,
              "lanes_per_doubling must be 1, 2, 4 or 8");

}  // namespace km
