// secure.h — KMALLOC_SECURE=1: hardening that costs time, off by default (meson -Dsecure=true makes
// it the build's default).
//   * free lists encoded with a secret of secure mode's own (not the free tags' key): a corrupted
//     link, or one to a block in use, is detected, never followed
//   * cells of a fresh page handed out in random order
//   * every cell zeroed when freed
//   * the bytes after the requested size filled with a canary pattern, checked on free: a 1-byte
//     overflow is reported; the requested size is kept in the cell's last word
//   * a guard page at the end of every lane page and after every large block; when the kernel
//     refuses one (vm.max_map_count), the allocation fails with ENOMEM and a line says why, once
// The link, tail and order secrets are drawn at start-up, apart from g_page_secret (see secure.cpp).
// In secure mode every page carries kPageSecure, so malloc and free always take the slow paths, which
// call the functions below; the fast paths are not touched.
#pragma once
#include <cstddef>

#include "core/page.h"

namespace km {

extern bool g_secure;   // set once at start-up
inline bool secure_enabled() { return g_secure; }
void secure_init();

// Does pg's cell carry a canary and its requested size in its last word? Secure lane cells do; a
// secure span has its guard page instead.
KM_INLINE bool has_canary(const Page* pg) { return page_has(pg, kPageSecure) && !pg->span; }

constexpr size_t kSecureTail = 8;   // the word at the end of a secure cell: a canary byte, the requested size and its complement
// The lane to use in secure mode for a request of `size` that would take `lane`: room for the tail
// word, and the same power-of-two alignment as `lane`. 0: use a large block.
unsigned secure_lane(size_t size, unsigned lane);
// Bytes of a secure page's slots left for cells (the last OS page is the guard).
size_t secure_page_bytes(size_t slot_bytes);
// Make the page at `page` a guard (PROT_NONE). false when the kernel refuses (the caller fails the
// allocation with ENOMEM; the reason is printed once).
bool secure_guard(void* page);
// The guard of a new lane page (false: refused, the page must not be used); and its removal when
// the page goes back to its segment (fatal if the kernel refuses).
bool secure_page_setup(Page* pg, size_t slot_bytes);
void secure_page_teardown(Page* pg, size_t slot_bytes);

void secure_carve(Page* pg, char* first, uint32_t n);
bool secure_has_cell(Page* pg);
void* secure_pop(Page* pg, bool zero, size_t size);
void secure_push(Page* pg, Block* b);
void secure_scrub(Page* pg, Block* b);
void secure_check_free(Page* pg, Block* b);   // canary and tail check; fatal on damage
// The requested size kept in a live cell's tail (0 for malloc(0)); fatal if the tail is damaged.
size_t secure_usable_size(const Page* pg, const void* p);
// realloc within the cell: a new requested size (<= cell - tail), with the canary redrawn after it.
void secure_resize(Page* pg, void* p, size_t size);
size_t secure_capacity(const Page* pg);   // the largest request a cell of pg can hold
void secure_zero(void* p, size_t n);          // a zeroing the compiler cannot remove

}  // namespace km
