// huge.cpp — see huge.h.
#include "core/huge.h"

#include <atomic>
#include <cstring>

#include "core/config.h"
#include "core/diag.h"
#include "core/options.h"
#include "core/purge_work.h"
#include "core/secure.h"
#include "core/segment.h"
#include "core/stats.h"
#include "platform/os.h"

namespace km {
namespace {

constexpr uint64_t kHugeMagic = 0x6B6D616C6C6F6348ull;
constexpr uint32_t kLive = 1, kCached = 2;
constexpr size_t kHeaderBytes = os::kPageSize;

struct HugeHeader {
  uint64_t check;        // kHugeMagic ^ its own address: a header of ours
  size_t map_len;        // bytes mapped from the header
  size_t base_align;     // the mapping's alignment (>= kSegmentSize)
  char* block;           // what the program holds
  size_t usable;         // bytes usable from block (page multiple; a guard page may follow)
  std::atomic<uint32_t> state;
  uint32_t guard;        // secure mode: the page after `usable` is inaccessible
  int64_t freed_ms;      // when it was cached
};
static_assert(sizeof(HugeHeader) <= kHeaderBytes);

// The cache: slot i holds a header (owned by the slot) or nullptr. len[i]/freed[i] are hints for
// choosing, written before the header is published; the real values are read once a slot is won.
constexpr int kCacheSlots = 16;
std::atomic<HugeHeader*> g_cache[kCacheSlots];
std::atomic<size_t> g_cache_len[kCacheSlots];
std::atomic<int64_t> g_cache_freed[kCacheSlots];
std::atomic<size_t> g_cached{0};

uint8_t map_byte_for(const HugeHeader* h) {
  return uint8_t(kMapHuge + ((reinterpret_cast<uintptr_t>(h->block) - reinterpret_cast<uintptr_t>(h)) >>
                             kSegmentShift));
}

// The header of huge block (or former block) p, or nullptr if p's map byte does not lead to one.
HugeHeader* header_of(const void* p) {
  uint8_t m = map_value(p);
  if (m < kMapHuge) return nullptr;
  uintptr_t region = reinterpret_cast<uintptr_t>(p) & ~(kSegmentSize - 1);
  auto* h = reinterpret_cast<HugeHeader*>(region - (uintptr_t(m - kMapHuge) << kSegmentShift));
  if (h->check != (kHugeMagic ^ reinterpret_cast<uintptr_t>(h)) || h->block != p) return nullptr;
  return h;
}

void unmap_header(HugeHeader* h) {
  map_store(h->block, 0);
  stats_metadata_add(-long(kHeaderBytes));
  os::unmap(h, h->map_len);
}

// Win cache slot i from whoever else may want it: its header, now the caller's, or nullptr.
HugeHeader* cache_claim(int i) {
  HugeHeader* h = g_cache[i].load(std::memory_order_acquire);
  if (!h || !g_cache[i].compare_exchange_strong(h, nullptr, std::memory_order_acq_rel)) return nullptr;
  g_cached.fetch_sub(h->map_len, std::memory_order_relaxed);
  return h;
}

// Take the cached mapping closest to `len` (the smallest that holds it, else the largest), aligned
// to base_align. nullptr when none.
HugeHeader* cache_take(size_t len, size_t base_align) {
  for (int attempt = 0; attempt < 4; ++attempt) {
    int best = -1;
    size_t best_len = 0;
    for (int i = 0; i < kCacheSlots; ++i) {
      HugeHeader* h = g_cache[i].load(std::memory_order_acquire);
      if (!h || (reinterpret_cast<uintptr_t>(h) & (base_align - 1))) continue;
      size_t l = g_cache_len[i].load(std::memory_order_relaxed);
      bool better = best < 0 || (l >= len ? (best_len < len || l < best_len) : (best_len < len && l > best_len));
      if (better) best = i, best_len = l;
    }
    if (best < 0) return nullptr;
    if (HugeHeader* h = cache_claim(best)) return h;
  }
  return nullptr;
}

// Unmap the cached mapping freed longest ago. false if the cache is empty.
bool cache_evict_oldest() {
  int oldest = -1;
  int64_t t = INT64_MAX;
  for (int i = 0; i < kCacheSlots; ++i)
    if (g_cache[i].load(std::memory_order_relaxed) && g_cache_freed[i].load(std::memory_order_relaxed) < t)
      oldest = i, t = g_cache_freed[i].load(std::memory_order_relaxed);
  if (oldest < 0) return false;
  if (HugeHeader* h = cache_claim(oldest)) unmap_header(h);
  return true;
}

// Keep a freed mapping for reuse, or unmap it when the cache has no room for it.
void cache_put(HugeHeader* h) {
  size_t limit = size_t(option(Opt::large_cache_mb)) << 20;
  if (option(Opt::purge_delay_ms) == 0 || h->map_len > limit) return unmap_header(h);
  while (g_cached.load(std::memory_order_relaxed) + h->map_len > limit)
    if (!cache_evict_oldest()) break;
  h->freed_ms = os::now_ms();
  h->state.store(kCached, std::memory_order_relaxed);
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < kCacheSlots; ++i) {
      if (g_cache[i].load(std::memory_order_relaxed)) continue;
      g_cache_len[i].store(h->map_len, std::memory_order_relaxed);
      g_cache_freed[i].store(h->freed_ms, std::memory_order_relaxed);
      HugeHeader* empty = nullptr;
      if (g_cache[i].compare_exchange_strong(empty, h, std::memory_order_acq_rel)) {
        g_cached.fetch_add(h->map_len, std::memory_order_relaxed);
        purge_work_note();
        return;
      }
    }
    cache_evict_oldest();   // every slot taken: make one free
  }
  unmap_header(h);
}

// Resize mapping h (its map byte already cleared) to hold `len` bytes: in place, or moved to a fresh
// reservation aligned like it. A mapping larger than needed is cut at the first 4 MiB boundary past
// `len`: the tail (still resident) becomes a cached mapping of its own, the head keeps less than
// 4 MiB of slack (a later realloc grows into it with no system call). Returns the header at its new
// place, or nullptr (h unchanged).
HugeHeader* resize_mapping(HugeHeader* h, size_t len) {
  size_t have = h->map_len;
  size_t off = size_t(h->block - reinterpret_cast<char*>(h));
  if (len <= have) {
    size_t cut = (len + kSegmentSize - 1) & ~(kSegmentSize - 1);
    if (have >= cut + kSegmentSize) {
      auto* tail = reinterpret_cast<HugeHeader*>(reinterpret_cast<char*>(h) + cut);
      tail->check = kHugeMagic ^ reinterpret_cast<uintptr_t>(tail);
      tail->map_len = have - cut;
      tail->base_align = kSegmentSize;
      tail->block = reinterpret_cast<char*>(tail) + kHeaderBytes;
      tail->usable = 0;
      tail->guard = 0;
      stats_metadata_add(long(kHeaderBytes));
      map_store(tail->block, map_byte_for(tail));   // as any cached mapping: a free reports "double"
      h->map_len = cut;
      cache_put(tail);
    }
    return h;
  }
  if (os::resize_in_place(h, have, len)) {
    h->map_len = len;
    return h;
  }
  void* target = os::map_aligned(len, h->base_align);
  if (!target) return nullptr;
  if (!os::move_to(h, have, len, target)) {
    os::unmap(target, len);
    return nullptr;
  }
  auto* moved = static_cast<HugeHeader*>(target);
  moved->check = kHugeMagic ^ reinterpret_cast<uintptr_t>(moved);
  moved->map_len = len;
  moved->block = reinterpret_cast<char*>(moved) + off;
  return moved;
}

bool lengths(size_t size, size_t align, size_t* off, size_t* usable, size_t* len) {
  *usable = os::page_round(size);
  *off = align > kHeaderBytes ? align : kHeaderBytes;
  size_t guard = secure_enabled() ? os::kPageSize : 0;
  *len = *off + *usable + guard;
  return *usable >= size && *len > *usable && *len <= (size_t(1) << 46) &&
         (*off >> kSegmentShift) < size_t(255 - kMapHuge);
}

}  // namespace

void* huge_alloc(size_t size, size_t align, bool zero) {
  size_t off, usable, len;
  if (!lengths(size, align, &off, &usable, &len)) return nullptr;
  size_t base_align = align > kSegmentSize ? align : kSegmentSize;
  bool guard = secure_enabled();
  size_t dirty = 0;   // bytes from the block's start that may hold old data
  HugeHeader* h = guard ? nullptr : cache_take(len, base_align);
  if (h) {
    dirty = h->map_len - off;   // the old contents, wherever the new block starts
    map_store(h->block, 0);
    h->base_align = base_align;   // a move keeps the alignment this request needs
    HugeHeader* r = resize_mapping(h, len);
    if (!r) unmap_header(h);
    h = r;
  }
  if (!h) {
    h = static_cast<HugeHeader*>(os::map_aligned(len, base_align));
    if (!h) return nullptr;
    stats_metadata_add(long(kHeaderBytes));
    h->check = kHugeMagic ^ reinterpret_cast<uintptr_t>(h);
    h->map_len = len;
    h->base_align = base_align;
    dirty = 0;
  }
  h->block = reinterpret_cast<char*>(h) + off;
  h->usable = usable;
  h->guard = guard;
  if (guard && !secure_guard(h->block + h->usable)) {
    os::unmap(h, h->map_len);
    stats_metadata_add(-long(kHeaderBytes));
    return nullptr;
  }
  h->state.store(kLive, std::memory_order_relaxed);
  map_store(h->block, map_byte_for(h));
  if (zero && dirty) std::memset(h->block, 0, dirty < h->usable ? dirty : h->usable);
  stats_huge_add(long(h->usable));
  return h->block;
}

void huge_free(void* p, const char* call) {
  HugeHeader* h = header_of(p);
  if (!h) fatal_pointer(call, "invalid pointer", p);
  uint32_t live = kLive;
  if (!h->state.compare_exchange_strong(live, kCached, std::memory_order_acq_rel))
    fatal_pointer(call, "double free", p);
  stats_huge_add(-long(h->usable));
  if (h->guard) {
    if (!os::protect_rw(h->block + h->usable, os::kPageSize))
      fatal_pointer(call, "cannot lift the guard page after block", p);
    return unmap_header(h);   // secure mode: never reused, so nothing of it can be read again
  }
  cache_put(h);
}

size_t huge_usable_size(const void* p) {
  HugeHeader* h = header_of(p);
  return h && h->state.load(std::memory_order_relaxed) == kLive ? h->usable : 0;
}

namespace {
// Secure mode grows a huge block by moving its pages (no copy made, none left behind) into a fresh
// mapping whose guard page is set first; the old guard page is unmapped after. A refused guard or a
// refused move leaves the old block as it was, guarded. Only the pages before the old guard move: a
// mapping that spans it would be two (anonymous mappings moved once do not merge back). It shrinks
// by copy (resize's fallback): a cut tail would be cached, and secure mode reuses no mapping. The
// caller cleared h's map byte.
HugeHeader* secure_grow(HugeHeader* h, size_t len) {
  if (len <= h->map_len) return nullptr;
  char* target = static_cast<char*>(os::map_aligned(len, h->base_align));
  if (!target) return nullptr;
  size_t off = size_t(h->block - reinterpret_cast<char*>(h));   // h is gone once its pages moved
  char* old_guard = h->block + h->usable;
  if (!secure_guard(target + len - os::kPageSize) ||
      !os::move_to(h, h->map_len - os::kPageSize, len - os::kPageSize, target)) {
    os::unmap(target, len);
    return nullptr;
  }
  os::unmap(old_guard, os::kPageSize);
  auto* moved = reinterpret_cast<HugeHeader*>(target);
  moved->check = kHugeMagic ^ reinterpret_cast<uintptr_t>(moved);
  moved->map_len = len;
  moved->block = target + off;
  return moved;
}
}  // namespace

bool huge_resize(void* p, size_t size, void** out) {
  HugeHeader* h = header_of(p);
  if (!h) return false;
  size_t off = size_t(h->block - reinterpret_cast<char*>(h));
  size_t usable, len;
  if (!lengths(size, off, &off, &usable, &len)) return false;   // off is max(align, header): kept
  size_t old_usable = h->usable;
  map_store(h->block, 0);   // the old address is forgotten before the mapping can move
  HugeHeader* r = h->guard ? secure_grow(h, len) : resize_mapping(h, len);
  if (!r) {
    map_store(h->block, map_byte_for(h));
    return false;
  }
  r->usable = usable;
  map_store(r->block, map_byte_for(r));
  stats_huge_add(long(r->usable) - long(old_usable), false);
  *out = r->block;
  return true;
}

size_t huge_purge_expired(int64_t cutoff_ms) {
  size_t bytes = 0;
  for (int i = 0; i < kCacheSlots; ++i) {
    if (g_cache_freed[i].load(std::memory_order_relaxed) > cutoff_ms) continue;
    HugeHeader* h = cache_claim(i);
    if (!h) continue;
    bytes += h->map_len;
    unmap_header(h);
  }
  return bytes;
}

size_t huge_cached_bytes() { return g_cached.load(std::memory_order_relaxed); }

}  // namespace km
