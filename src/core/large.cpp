// large.cpp — see large.h.
//
// Registry: an open-addressing hash table (linear probing, tombstones) in mapped memory, keyed by
// block address, holding each block's usable size. Cache: up to kCacheSlots freed mappings.
// Everything is guarded by g_large_lock; system calls are made outside it.
#include "core/large.h"

#include <cstring>

#include "core/lock.h"
#include "core/options.h"
#include "core/purge.h"
#include "core/secure.h"
#include "core/stats.h"
#include "platform/os.h"

namespace km {
namespace {

constexpr uintptr_t kEmpty = 0, kTombstone = 1;
constexpr size_t kGuardFlag = 1;   // low bit of a size: a guard page follows the block (secure mode)

struct Entry {
  uintptr_t addr;
  size_t size;   // usable bytes (a page multiple) | kGuardFlag
};

struct CacheSlot {
  uintptr_t addr;
  size_t size;
  int64_t freed_ms;
};
constexpr int kCacheSlots = 32;
constexpr size_t kSplitMin = 64 << 10;   // a cached tail smaller than this is handed out with the head

SpinLock g_large_lock;
Entry* g_table = nullptr;   // capacity g_cap (a power of two), or nullptr before the first block
size_t g_cap = 0, g_live = 0, g_dead = 0;
CacheSlot g_cache[kCacheSlots];
size_t g_cached = 0;

size_t page_round(size_t n) { return (n + os::kPageSize - 1) & ~(os::kPageSize - 1); }
size_t map_len(size_t size) { return (size & ~kGuardFlag) + ((size & kGuardFlag) ? os::kPageSize : 0); }

size_t slot_of(uintptr_t addr, size_t cap) {
  return size_t(((addr >> 12) * 0x9E3779B97F4A7C15ull) >> 17) & (cap - 1);
}

Entry* find(uintptr_t addr) {
  if (!g_table) return nullptr;
  for (size_t i = slot_of(addr, g_cap);; i = (i + 1) & (g_cap - 1)) {
    if (g_table[i].addr == addr) return &g_table[i];
    if (g_table[i].addr == kEmpty) return nullptr;
  }
}

// Make room for one more entry; rebuilds the table (dropping tombstones) when it is half used.
bool reserve_one() {
  if (g_table && (g_live + g_dead + 1) * 2 <= g_cap) return true;
  size_t cap = g_cap ? g_cap : 1024;
  while ((g_live + 1) * 4 > cap) cap *= 2;
  auto* t = static_cast<Entry*>(os::map(cap * sizeof(Entry)));
  if (!t) return false;
  stats_metadata_add(long(cap * sizeof(Entry)));
  for (size_t i = 0; i < g_cap; ++i) {
    if (g_table[i].addr <= kTombstone) continue;
    size_t j = slot_of(g_table[i].addr, cap);
    while (t[j].addr != kEmpty) j = (j + 1) & (cap - 1);
    t[j] = g_table[i];
  }
  if (g_table) {
    os::unmap(g_table, g_cap * sizeof(Entry));
    stats_metadata_add(-long(g_cap * sizeof(Entry)));
  }
  g_table = t;
  g_cap = cap;
  g_dead = 0;
  return true;
}

// Insert without growing: the table is at most half full, so a slot is always found.
void insert_no_grow(uintptr_t addr, size_t size) {
  size_t i = slot_of(addr, g_cap);
  while (g_table[i].addr > kTombstone) i = (i + 1) & (g_cap - 1);
  if (g_table[i].addr == kTombstone) --g_dead;
  g_table[i] = Entry{addr, size};
  ++g_live;
}

bool insert(uintptr_t addr, size_t size) {
  if (!reserve_one()) return false;
  insert_no_grow(addr, size);
  return true;
}

void erase(Entry* e) {
  e->addr = kTombstone;
  --g_live;
  ++g_dead;
}

// The cached mapping to reuse for `need` bytes: the smallest that is large enough, else the largest
// (it is grown with mremap, which keeps its pages). Guarded blocks only fit exactly enough, since
// their guard page must stay right after the end. Guarded by g_large_lock.
CacheSlot* cache_pick(size_t need, bool guard) {
  CacheSlot *fit = nullptr, *largest = nullptr;
  for (auto& c : g_cache) {
    if (!c.addr || bool(c.size & kGuardFlag) != guard) continue;
    size_t have = c.size & ~kGuardFlag;
    if (have >= need && (!fit || have < (fit->size & ~kGuardFlag))) fit = &c;
    if (!largest || have > (largest->size & ~kGuardFlag)) largest = &c;
  }
  if (guard) return fit && (fit->size & ~kGuardFlag) <= need + need / 4 + (64 << 10) ? fit : nullptr;
  return fit ? fit : largest;
}

void unmap_block(uintptr_t addr, size_t size) { os::unmap(reinterpret_cast<void*>(addr), map_len(size)); }

}  // namespace

void* large_alloc(size_t size, size_t align, bool zero) {
  size_t need = page_round(size);
  if (need < size || need > (size_t(1) << 47)) return nullptr;   // overflow, or more than the address space
  bool guard = secure_enabled();
  if (align <= os::kPageSize) {
    // Reuse a cached mapping: its pages are resident already, so no page faults.
    uintptr_t addr = 0;
    size_t sz = 0;
    {
      LockGuard g(g_large_lock);
      if (CacheSlot* c = cache_pick(need, guard)) {
        addr = c->addr, sz = c->size;
        size_t have = sz & ~kGuardFlag;
        if (!guard && have >= need + kSplitMin) {
          // Split: the head serves the request, the resident tail stays cached. No system call.
          c->addr = addr + need;
          c->size = have - need;
          sz = need;
          g_cached -= need;
          stats_large_cached_add(-long(need));
        } else {
          c->addr = 0;
          g_cached -= map_len(sz);
          stats_large_cached_add(-long(map_len(sz)));
        }
      }
    }
    if (addr) {
      size_t have = sz & ~kGuardFlag;
      if (!guard && have < need) {   // grow, keeping the resident pages (mremap may move the tables)
        if (void* q = os::remap(reinterpret_cast<void*>(addr), have, need)) {
          addr = reinterpret_cast<uintptr_t>(q);
          sz = need;
        } else if (have < need) {
          unmap_block(addr, sz);
          addr = 0;
        }
      }
      bool ok = false;
      if (addr) {
        LockGuard g(g_large_lock);
        ok = insert(addr, sz);
      }
      if (ok) {
        size_t usable = sz & ~kGuardFlag;
        stats_large_add(long(usable));
        // Only the old part can hold old data: what mremap added is fresh, zero memory.
        if (zero) std::memset(reinterpret_cast<void*>(addr), 0, have < usable ? have : usable);
        return reinterpret_cast<void*>(addr);
      }
      if (addr) unmap_block(addr, sz);
    }
  }
  size_t len = need + (guard ? os::kPageSize : 0);
  if (len < need) return nullptr;
  void* p = align > os::kPageSize ? os::map_aligned(len, align) : os::map(len);
  if (!p) return nullptr;
  if (guard && !secure_guard(static_cast<char*>(p) + need)) {   // never hand out an unguarded block
    os::unmap(p, len);
    return nullptr;
  }
  size_t sz = need | (guard ? kGuardFlag : 0);
  bool ok;
  {
    LockGuard g(g_large_lock);
    ok = insert(reinterpret_cast<uintptr_t>(p), sz);
  }
  if (!ok) {
    os::unmap(p, len);
    return nullptr;
  }
  stats_large_add(long(need));
  return p;
}

bool large_free(void* p) {
  auto addr = reinterpret_cast<uintptr_t>(p);
  size_t size;
  CacheSlot evicted[kCacheSlots];   // unmapped after the lock is released
  int nevicted = 0;
  {
    LockGuard g(g_large_lock);
    Entry* e = find(addr);
    if (!e) return false;
    size = e->size;
    erase(e);
    stats_large_add(-long(size & ~kGuardFlag));
    size_t limit = size_t(option(Opt::large_cache_mb)) << 20;
    if (option(Opt::purge_delay_ms) != 0 && map_len(size) <= limit / 2) {
      if (secure_enabled()) secure_zero(p, size & ~kGuardFlag);
      // Evict the oldest entries until the block fits, in bytes and in slots; then keep it.
      CacheSlot* slot = nullptr;
      for (;;) {
        slot = nullptr;
        for (auto& c : g_cache)
          if (!c.addr) slot = &c;
        if (slot && g_cached + map_len(size) <= limit) break;
        CacheSlot* oldest = nullptr;
        for (auto& c : g_cache)
          if (c.addr && (!oldest || c.freed_ms < oldest->freed_ms)) oldest = &c;
        evicted[nevicted++] = *oldest;   // the cache is not empty: the block needs room
        g_cached -= map_len(oldest->size);
        stats_large_cached_add(-long(map_len(oldest->size)));
        oldest->addr = 0;
      }
      *slot = CacheSlot{addr, size, os::now_ms()};
      g_cached += map_len(size);
      stats_large_cached_add(long(map_len(size)));
      size = 0;   // kept
    }
  }
  for (int i = 0; i < nevicted; ++i) unmap_block(evicted[i].addr, evicted[i].size);
  if (size) unmap_block(addr, size);
  else purge_schedule();
  return true;
}

size_t large_usable_size(const void* p) {
  LockGuard g(g_large_lock);
  Entry* e = find(reinterpret_cast<uintptr_t>(p));
  return e ? e->size & ~kGuardFlag : 0;
}

void* large_realloc(void* p, size_t new_size) {
  size_t need = page_round(new_size);
  if (need < new_size || need > (size_t(1) << 47)) return nullptr;
  size_t size;
  {
    LockGuard g(g_large_lock);
    Entry* e = find(reinterpret_cast<uintptr_t>(p));
    if (!e) return nullptr;
    size = e->size;
    // Stays in place when it fits and would not waste more than half.
    if (need <= (size & ~kGuardFlag) && need >= (size & ~kGuardFlag) / 2) return p;
  }
  if (size & kGuardFlag) {   // guarded blocks move by copy, so the guard stays right after the end
    void* q = large_alloc(new_size, 0, false);
    if (!q) return nullptr;
    std::memcpy(q, p, (size & ~kGuardFlag) < need ? (size & ~kGuardFlag) : new_size);
    large_free(p);
    return q;
  }
  void* q = os::remap(p, size, need);
  if (!q) return nullptr;
  LockGuard g(g_large_lock);
  erase(find(reinterpret_cast<uintptr_t>(p)));
  insert_no_grow(reinterpret_cast<uintptr_t>(q), need);   // the erase just made room
  stats_large_add(long(need) - long(size));
  return q;
}

size_t large_purge_expired(int64_t cutoff_ms) {
  CacheSlot expired[kCacheSlots];
  int n = 0;
  {
    LockGuard g(g_large_lock);
    for (auto& c : g_cache) {
      if (!c.addr || c.freed_ms > cutoff_ms) continue;
      expired[n++] = c;
      g_cached -= map_len(c.size);
      stats_large_cached_add(-long(map_len(c.size)));
      c.addr = 0;
    }
  }
  size_t bytes = 0;
  for (int i = 0; i < n; ++i) {
    unmap_block(expired[i].addr, expired[i].size);
    bytes += map_len(expired[i].size);
  }
  return bytes;
}

size_t large_cached_bytes() {
  LockGuard g(g_large_lock);
  return g_cached;
}

void large_fork_prepare() { g_large_lock.lock(); }
void large_fork_parent() { g_large_lock.unlock(); }
void large_fork_child() { g_large_lock.reset_in_child(); }

}  // namespace km
