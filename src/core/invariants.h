// invariants.h — the checks build (meson -Dchecks=true, KM_CHECKS): verify the invariants stated above
// Page and Segment on every slow path, and stop with a message naming the broken one. In a release
// build the macros compile to nothing.
#pragma once
#include "core/segment.h"

namespace km {
// The free lists, the counts, the cell geometry; current: pg is its lane's current page (page.h).
void check_page(const Page* pg, bool current);
void check_segment(const Segment* s);    // free/dirty slot bits, slot -> page map
}  // namespace km

#if KM_CHECKS
#define KM_CHECK_PAGE(pg, current) ::km::check_page(pg, current)
#define KM_CHECK_SEGMENT(s) ::km::check_segment(s)
#else
#define KM_CHECK_PAGE(pg, current) ((void)0)
#define KM_CHECK_SEGMENT(s) ((void)0)
#endif
