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

}  // namespace km
