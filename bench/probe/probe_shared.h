// probe_shared.h — layout of the file through which the live-bytes probe talks to scripts/ab.
//
// scripts/ab creates a file (on tmpfs) of kProbeFileSize zero bytes and passes its path in the
// environment variable KM_PROBE_FILE. Every process of the run that loads the probe claims one
// ProcSlot (by its pid) and keeps its counters there; the sampler maps the same file and sums the
// slots of the processes it sees in the process tree. scripts/ablib/probe.py mirrors these constants
// and offsets: change both together (tests/ab checks that they agree with a real run).
//
// Invariants: a slot's pid is 0 (free), -1 (being reset) or the pid of the process that owns it;
// only the owner writes its counters. live bytes are split over kStripes cache lines: stripe i > 0
// belongs to one thread (plain loads and stores, no locked instruction on the hot path), stripe 0 is
// shared by the threads beyond the 63rd (atomic adds). A stripe may go negative (allocated in one
// thread, freed in another); the sum over stripes is exact once no call is in flight.
#pragma once
#include <atomic>
#include <cstdint>

namespace km::probe {

constexpr uint64_t kMagic = 0x31424f5250424b4dull;  // "MKBPROB1" little-endian
constexpr uint32_t kVersion = 1;
constexpr uint32_t kMaxProcs = 256;  // processes of one run that can be counted at once
constexpr uint32_t kStripes = 64;    // per-process counter stripes: 0 is shared, 1.. owned by one thread

struct alignas(64) Stripe {
  std::atomic<int64_t> live;    // requested bytes allocated minus freed through this stripe
  std::atomic<int64_t> allocs;  // successful allocation calls (malloc, new, realloc moves, ...)
  std::atomic<int64_t> frees;   // frees of blocks the probe knew
};

struct alignas(64) ProcSlot {
  std::atomic<int32_t> pid;              // owner; 0 free; -1 being reset
  uint32_t reserved;
  std::atomic<uint64_t> probe_bytes;     // resident bytes of the probe's own table (subtract from RSS)
  std::atomic<uint64_t> foreign_frees;   // frees/reallocs of pointers the probe never saw
  std::atomic<uint64_t> untracked;       // allocations the probe could not record (see probe.cpp)
  Stripe stripes[kStripes];
};

struct alignas(64) Header {
  uint64_t magic;       // written by the first probe that maps the file
  uint32_t version;
  uint32_t max_procs;
  uint32_t stripes;
  uint32_t slot_size;   // sizeof(ProcSlot)
  uint32_t slots_offset;
};

constexpr uint32_t kSlotsOffset = 4096;
constexpr uint64_t kProbeFileSize = kSlotsOffset + uint64_t(kMaxProcs) * sizeof(ProcSlot);

static_assert(sizeof(Stripe) == 64);
static_assert(sizeof(ProcSlot) == 64 + 64 * kStripes);
static_assert(sizeof(Header) <= kSlotsOffset);

}  // namespace km::probe
