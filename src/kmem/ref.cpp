// ref.cpp — reference-counted cells: created with one reference, freed (or shredded) by the last.
#include "kmem/cell.h"

namespace {

// The header in front of a ref cell's data. Invariants: `refs` >= 1 while live, changed only with
// atomic read-modify-writes (any thread may up- or down-ref); the thread that takes it from 1 to 0
// owns the cell and releases it to `src`. id.size is the whole cell, header included. The kmcell
// comes last, right before the data, as in every kmem header: p - 16 tells any cell's kind.
struct RefCell {
  std::atomic<size_t> refs;
  kmcell* src;
  kmcell id;
};
static_assert(sizeof(RefCell) == 32);

using namespace km::kmem;

inline RefCell* header(void* p) { return static_cast<RefCell*>(p) - 1; }

inline RefCell* live(void* p) { return live_header<RefCell>(p, kmkind_ref); }

void* make(kmcell* src, size_t n, bool zero) {
  size_t total;
  if (n == 0 || !src_ok(src)) {
    errno = EINVAL;
    return nullptr;
  }
  if (!add_size(n, sizeof(RefCell), &total)) {
    errno = ENOMEM;
    return nullptr;
  }
  RefCell* h = static_cast<RefCell*>(src_alloc(src, total));
  if (h == nullptr) return nullptr;
  cell_init(&h->id, kmkind_ref, total);
  new (&h->refs) std::atomic<size_t>(1);
  h->src = src;
  if (zero) std::memset(static_cast<void*>(h + 1), 0, n);
  return h + 1;
}

void drop(void* p, bool shred) {
  if (p == nullptr) return;
  RefCell* h = live(p);
  if (h == nullptr) {
    errno = EINVAL;
    return;
  }
  if (shred) cell_taint(&h->id);
  if (h->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  h->id.magic = 0;
  bool s = cell_shred(&h->id);
  if (s) zero_explicit(h + 1, h->id.size - sizeof(RefCell));
  src_free(h->src, h, h->id.size, false);
}

inline kmptr wrap(void* p) {
  return kmptr{p ? kmkind_ref : kmkind_none, kmshred_no, p, p ? &header(p)->id : nullptr};
}

}  // namespace

namespace km::kmem {
size_t ref_size(void* p, kmcell** src) {
  RefCell* h = live(p);
  if (h == nullptr) return 0;
  if (src) *src = h->src;
  return h->id.size - sizeof(RefCell);
}
void ref_taint(void* p) {
  if (RefCell* h = live(p)) cell_taint(&h->id);
}
}  // namespace km::kmem

extern "C" KM_EXPORT void* kmrefa(kmcell* src, size_t n) { return make(src, n, false); }
extern "C" KM_EXPORT void* kmrefz(kmcell* src, size_t n) { return make(src, n, true); }
extern "C" KM_EXPORT kmptr kmrefao(kmcell* src, size_t n) { return wrap(make(src, n, false)); }
extern "C" KM_EXPORT kmptr kmrefzo(kmcell* src, size_t n) { return wrap(make(src, n, true)); }

// One more reference; returns p (NULL + EINVAL if p is not a live ref cell).
extern "C" KM_EXPORT void* kmrefu(void* p) {
  RefCell* h = live(p);
  if (h == nullptr) {
    errno = EINVAL;
    return nullptr;
  }
  h->refs.fetch_add(1, std::memory_order_relaxed);
  return p;
}

// Drop a reference; the last one frees the cell (shredding it if it was ever marked).
extern "C" KM_EXPORT void kmreff(void* p) { drop(p, false); }
// Drop a reference and mark the cell for shredding: whoever drops the last reference zeroes it.
extern "C" KM_EXPORT void kmrefs(void* p) { drop(p, true); }
