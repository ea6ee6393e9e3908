// huge.h — blocks above the largest span, and alignments above a slot: a mapping of their own.
//
// A huge block's mapping starts with a one-page HugeHeader and is aligned to at least 4 MiB (to the
// requested alignment when larger); the block starts `max(page, align)` bytes in. The segment map
// byte of the 4 MiB that holds the block's start is kMapHuge + k, the header being k * 4 MiB before
// it, so free() finds the header by masking, like a segment's, and nothing is looked up under a lock.
// realloc resizes the mapping with mremap in place, or moves it to a fresh aligned reservation with
// MREMAP_FIXED; the map byte of the old place is cleared before the move and the new one set after,
// so no moment exists in which one address is known as two blocks.
// Freed mappings wait in a small lock-free cache (KMALLOC_LARGE_CACHE_MB bytes, 16 entries, each for
// at most the purge delay): a request reuses the closest one, resized to fit, so its resident pages
// are not faulted in again.
// Invariants: a live header has state kLive and is known only to the program (through its block);
// a cached one has state kCached and is owned by its cache slot; a header's map byte is set exactly
// while it is live or cached.
#pragma once
#include <cstddef>
#include <cstdint>

namespace km {

// A huge block of `size` bytes aligned to `align` (a power of two; <= a page means 16). zero: reads
// as zeros. nullptr when the OS refuses or the size overflows (errno untouched).
void* huge_alloc(size_t size, size_t align, bool zero);
// free of a pointer whose map byte says huge: frees it, or stops the program (double or invalid free).
void huge_free(void* p, const char* call);
// Usable bytes of live huge block p; 0 if p is not one.
size_t huge_usable_size(const void* p);
// realloc (size > 0): resize or move the mapping; *out is the block afterwards. false when it cannot
// (secure mode, or the OS refused): p is intact and the caller copies.
bool huge_resize(void* p, size_t size, void** out);
// Unmap cached mappings freed at or before cutoff_ms. Returns the bytes unmapped.
size_t huge_purge_expired(int64_t cutoff_ms);
size_t huge_cached_bytes();

}  // namespace km
