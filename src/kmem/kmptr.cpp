// kmptr.cpp — the generic kmptr functions (free, shred, taint, zero, copy, dup) and kmzero/kmcopy.
#include "kmem/cell.h"

using namespace km::kmem;

namespace {

// Data bytes of the object p points at, when its kind records them; 0 otherwise.
size_t object_size(const kmptr& p) {
  if (p.ref == nullptr) return 0;
  switch (p.kind) {
    case kmkind_heap: return km_usable_size(p.ref);
    case kmkind_pool: {
      kmpool* pool = pool_of(p.ref);
      return pool ? pool_cell_size(pool) : 0;
    }
    case kmkind_ref: return ref_size(p.ref, nullptr);
    case kmkind_tree: return tree_size(p.ref, nullptr, nullptr);
    case kmkind_arena: return arena_large_size(reinterpret_cast<kmarena*>(p.cell), p.ref);
    default: return 0;
  }
}

void release(kmptr p, bool shred) {
  if (p.ref == nullptr) return;
  shred = shred || p.shred == kmshred_yes;
  switch (p.kind) {
    case kmkind_heap: if (shred) kmheaps(p.ref); else kmheapf(p.ref); break;
    case kmkind_pool: if (shred) kmpools(p.ref); else kmpoolf(p.ref); break;
    case kmkind_ref: if (shred) kmrefs(p.ref); else kmreff(p.ref); break;
    case kmkind_tree:
      if (shred) tree_taint(p.ref);
      kmtreef(p.ref);
      break;
    case kmkind_arena: {
      kmarena* a = reinterpret_cast<kmarena*>(p.cell);
      if (shred) {
        if (size_t n = arena_large_size(a, p.ref)) zero_explicit(p.ref, n);
      }
      kmarenaf(a, p.ref);
      break;
    }
    case kmkind_fifo: kmfifof(reinterpret_cast<kmfifo*>(p.cell), p.ref); break;
    default: break;  // none (static) and lin (released by kmlinx) are not freed one by one
  }
}

}  // namespace

// Free, downref or ignore, as the kind says. A tainted kmptr is shredded.
extern "C" KM_EXPORT void kmfree(kmptr p) { release(p, false); }
// The same, zeroing the contents if this deallocates (lin/none/arena-small objects: no size known,
// so nothing is zeroed; zero them with kmzero first if needed).
extern "C" KM_EXPORT void kmshred(kmptr p) { release(p, true); }

extern "C" KM_EXPORT kmptr kmstat(void* raw) { return kmptr{kmkind_none, kmshred_no, raw, nullptr}; }

// Shred when freed: the kmptr, and the cell itself for kinds with a per-object flag (pool, ref,
// tree), so raw kmpoolf/kmreff/kmtreef of the same object shred too.
extern "C" KM_EXPORT void kmtaint(kmptr* p) {
  if (p == nullptr) {
    errno = EINVAL;
    return;
  }
  p->shred = kmshred_yes;
  switch (p->kind) {
    case kmkind_pool: pool_taint(p->ref); break;
    case kmkind_ref: ref_taint(p->ref); break;
    case kmkind_tree: tree_taint(p->ref); break;
    default: break;
  }
}

extern "C" KM_EXPORT void kmzero(void* p, size_t n) {
  if (p == nullptr) {
    if (n != 0) errno = EINVAL;
    return;
  }
  zero_explicit(p, n);
}

// Zero the object p points at; EINVAL for kinds whose size is not recorded (none, lin, fifo,
// small arena allocations).
extern "C" KM_EXPORT void kmozero(kmptr p) {
  size_t n = object_size(p);
  if (n == 0) {
    errno = EINVAL;
    return;
  }
  zero_explicit(p.ref, n);
}

// memmove semantics (overlap allowed). NULL with n > 0 gets EINVAL.
extern "C" KM_EXPORT void kmcopy(void* dst, const void* src, size_t n) {
  if (n == 0) return;
  if (dst == nullptr || src == nullptr) {
    errno = EINVAL;
    return;
  }
  std::memmove(dst, src, n);
}

// A copy of the object as its sibling: same kind and source (heap, same pool, same ref source with
// a count of one, same tree parent). Kinds without a recorded size (none, lin, arena, fifo) get
// EINVAL and a kmkind_none result with ref NULL; so does an allocation failure (with its errno).
extern "C" KM_EXPORT kmptr kmdup(kmptr p) {
  kmptr out{kmkind_none, kmshred_no, nullptr, nullptr};
  size_t n = object_size(p);
  if (n == 0 || p.kind == kmkind_arena) {
    errno = EINVAL;
    return out;
  }
  switch (p.kind) {
    case kmkind_heap: out = kmheapao(n); break;
    case kmkind_pool: out = kmpoolao(pool_of(p.ref)); break;
    case kmkind_ref: {
      kmcell* src = nullptr;
      ref_size(p.ref, &src);
      out = kmrefao(src, n);
      break;
    }
    case kmkind_tree: {
      kmcell* src = nullptr;
      void* parent = nullptr;
      tree_size(p.ref, &src, &parent);
      out = kmtreeao(src, parent, n);
      break;
    }
    default: break;
  }
  if (out.ref == nullptr) return kmptr{kmkind_none, kmshred_no, nullptr, nullptr};
  std::memcpy(out.ref, p.ref, n);
  if (p.shred == kmshred_yes) kmtaint(&out);
  return out;
}
