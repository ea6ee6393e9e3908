// thin.h — giving back the free OS pages inside a sparse lane page, and taking them again.
//
// A lane page that is not being allocated from and whose carved bytes are at least half free can
// hold whole OS pages (4 KiB) in which no cell is live. Thinning purges those (MADV_DONTNEED): every
// free cell that overlaps one is taken off the free lists first (its link would read zero) and
// counted in Page::dropped, the OS page's bit set in Page::thinned. When the page runs out of listed
// cells, page_thicken puts every dropped cell back on `free` (they were all free: nothing can hand
// them out or free them while they are on no list), so the OS pages fault in again only when the
// lane needs them. Owner thread only. Secure pages (encoded lists) and spans are never thinned.
// Known limit: a double free of a dropped cell is not caught (its free tag was purged with it).
#pragma once
#include <cstddef>

#include "core/page.h"

namespace km {

// Is pg sparse enough, and changed enough since its last thinning, to be worth a pass?
bool page_thin_candidate(const Page* pg);
// Purge pg's OS pages that hold no live cell, in runs of at least min_run of them. Returns the bytes
// given back.
size_t page_thin(Page* pg, unsigned min_run);
// Put pg's dropped cells back on `free`. false if it had none.
bool page_thicken(Page* pg);

// ---- shared with the purger's sink (sink.h), which gives back OS pages of cells in its hands.
// Bitmaps of OS pages of one lane page: 4 words, 256 OS pages (its largest, 16 slots).
// Into `give`, the runs of `freeable` (os_pages long) worth a system call each: at least min_run OS
// pages, and together at least 16 KiB. Returns how many OS pages it chose (0: none, give cleared).
unsigned thin_pick_runs(const uint64_t* freeable, unsigned os_pages, unsigned min_run, uint64_t* give);
// Purge the runs of `give` in the page starting at `start`: each OS page purged gets its bit in
// `done`, each the kernel refused in `refused`. Returns the bytes purged.
size_t thin_purge_runs(char* start, unsigned os_pages, const uint64_t* give, uint64_t* done,
                       uint64_t* refused);
// OS pages [first, last] that cell `b` of pg covers.
void cell_os_pages(const Page* pg, const void* b, unsigned* first, unsigned* last);
// Does cell `b` of pg cover an OS page set in `m`?
bool cell_overlaps(const Page* pg, const uint64_t* m, const void* b);

}  // namespace km
