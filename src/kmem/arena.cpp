// arena.cpp — the resettable memory pool of the seed: small requests carved linearly from blocks of
// `blocksz` bytes, larger ones in blocks of their own that kmarenaf frees at once.
#include "kmem/cell.h"

namespace {

// A block of small allocations. Invariants: data starts right after the header (16-aligned) and
// `end` is data + blocksz; data <= last <= end. Blocks are kept until kmarenax; kmarenar rewinds them.
struct Block {
  Block* next;  // the next block in carving order, NULL at the end
  char* last;   // first free byte
  char* end;    // one past the last byte
  size_t pad;
  char* data() { return reinterpret_cast<char*>(this + 1); }
};
static_assert(sizeof(Block) % 16 == 0);

// The header in front of a large allocation. Invariants: on the arena's doubly linked list exactly
// while live; `owner` and `magic` let kmarenaf recognise it in O(1).
struct Large {
  Large* prev;
  Large* next;
  kmarena* owner;
  uint64_t magic;
};
static_assert(sizeof(Large) == 32);
constexpr uint64_t kLargeMagic = 0x6b6d61726c617267ull;

}  // namespace

// An arena. Invariants: `head` is the block allocated with the arena itself; blocks before `cur`
// are full (their tails are wasted until kmarenar), blocks after it are empty. Single owner: no locks.
struct kmarena {
  kmcell id;       // kind arena, size = blocksz
  Block* head;     // first block (inside this allocation)
  Block* cur;      // the block small requests are carved from
  Large* large;    // live large allocations, newest first
  size_t blocksz;  // data bytes per block, a multiple of 16
};

namespace {
using namespace km::kmem;

constexpr size_t kArenaHead = (sizeof(kmarena) + 15) & ~size_t{15};

inline bool valid(kmarena* a) { return cell_is(reinterpret_cast<kmcell*>(a), kmkind_arena); }

inline char* align_up(char* p) {
  return reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(p) + 15) & ~uintptr_t{15});
}

void block_init(Block* b, size_t blocksz) {
  b->next = nullptr;
  b->last = b->data();
  b->end = b->data() + blocksz;
  b->pad = 0;
}

void* alloc_large(kmarena* a, size_t n) {
  size_t total;
  if (!add_size(n, sizeof(Large), &total) || total > (SIZE_MAX >> 1)) {
    errno = ENOMEM;
    return nullptr;
  }
  Large* l = static_cast<Large*>(km_malloc(total));
  if (l == nullptr) return nullptr;
  l->prev = nullptr;
  l->next = a->large;
  l->owner = a;
  l->magic = kLargeMagic;
  if (a->large) a->large->prev = l;
  a->large = l;
  return l + 1;
}

// Slow path of a small request: the next (empty) block, or a new one appended.
void* alloc_next_block(kmarena* a, size_t n) {
  Block* b = a->cur->next;
  if (b == nullptr) {
    b = static_cast<Block*>(km_malloc(sizeof(Block) + a->blocksz));
    if (b == nullptr) return nullptr;
    block_init(b, a->blocksz);
    a->cur->next = b;
  }
  a->cur = b;
  char* m = b->last;  // a block's data is 16-aligned and empty, and n <= blocksz
  b->last = m + n;
  return m;
}

inline void* alloc(kmarena* a, size_t n, bool aligned) {
  if (KM_UNLIKELY(!valid(a) || n == 0)) {
    errno = EINVAL;
    return nullptr;
  }
  if (KM_UNLIKELY(n > a->blocksz)) return alloc_large(a, n);
  Block* b = a->cur;
  char* m = aligned ? align_up(b->last) : b->last;
  if (KM_LIKELY(m <= b->end && static_cast<size_t>(b->end - m) >= n)) {
    b->last = m + n;
    return m;
  }
  return alloc_next_block(a, n);
}

void free_large_all(kmarena* a) {
  Large* l = a->large;
  while (l != nullptr) {
    Large* next = l->next;
    l->magic = 0;
    km_free(l);
    l = next;
  }
  a->large = nullptr;
}

}  // namespace

// An arena whose blocks hold blocksz bytes (rounded up to 16). EINVAL for 0, ENOMEM on overflow.
extern "C" KM_EXPORT kmarena* kmarenai(size_t blocksz) {
  if (blocksz == 0) {
    errno = EINVAL;
    return nullptr;
  }
  size_t bs, total;
  if (!align16(blocksz, &bs) || !add_size(bs, kArenaHead + sizeof(Block), &total)) {
    errno = ENOMEM;
    return nullptr;
  }
  char* mem = static_cast<char*>(km_malloc(total));
  if (mem == nullptr) return nullptr;
  kmarena* a = reinterpret_cast<kmarena*>(mem);
  cell_init(&a->id, kmkind_arena, bs);
  a->blocksz = bs;
  a->head = reinterpret_cast<Block*>(mem + kArenaHead);
  block_init(a->head, bs);
  a->cur = a->head;
  a->large = nullptr;
  return a;
}

// Free everything: large allocations, blocks, the arena.
extern "C" KM_EXPORT void kmarenax(kmarena* a) {
  if (!valid(a)) {
    errno = EINVAL;
    return;
  }
  free_large_all(a);
  Block* b = a->head->next;
  while (b != nullptr) {
    Block* next = b->next;
    km_free(b);
    b = next;
  }
  a->id.magic = 0;
  km_free(a);
}

// Free the large allocations and rewind every block: the next request starts at the first block.
extern "C" KM_EXPORT void kmarenar(kmarena* a) {
  if (!valid(a)) {
    errno = EINVAL;
    return;
  }
  free_large_all(a);
  for (Block* b = a->head; b != nullptr; b = b->next) b->last = b->data();
  a->cur = a->head;
}

extern "C" KM_EXPORT void* kmarenaa(kmarena* a, size_t n) { return alloc(a, n, true); }
extern "C" KM_EXPORT void* kmarenan(kmarena* a, size_t n) { return alloc(a, n, false); }

extern "C" KM_EXPORT void* kmarenaz(kmarena* a, size_t n) {
  void* p = alloc(a, n, true);
  if (p != nullptr) std::memset(p, 0, n);
  return p;
}

// Free a large allocation now; small ones live until kmarenar/kmarenax, so they are ignored (as is
// NULL). A NULL or destroyed arena gets EINVAL.
extern "C" KM_EXPORT void kmarenaf(kmarena* a, void* p) {
  if (!valid(a)) {
    errno = EINVAL;
    return;
  }
  if (p == nullptr || (reinterpret_cast<uintptr_t>(p) & 15) != 0) return;
  Large* l = static_cast<Large*>(p) - 1;
  if (l->owner != a || l->magic != kLargeMagic) return;
  if (l->prev ? l->prev->next != l : a->large != l) return;
  if (l->prev) l->prev->next = l->next; else a->large = l->next;
  if (l->next) l->next->prev = l->prev;
  l->magic = 0;
  km_free(l);
}

namespace km::kmem {
// Bytes of the large allocation p of arena a, 0 if p is a small one (whose size is not recorded).
size_t arena_large_size(kmarena* a, void* p) {
  if (!valid(a) || p == nullptr || (reinterpret_cast<uintptr_t>(p) & 15) != 0) return 0;
  Large* l = static_cast<Large*>(p) - 1;
  if (l->owner != a || l->magic != kLargeMagic) return 0;
  return km_usable_size(l) - sizeof(Large);
}
}  // namespace km::kmem
