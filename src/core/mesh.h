// mesh.h — what meshing would give back: an estimate, not meshing.
//
// Meshing (Mesh, PLDI 2019) lets two OS pages of one lane whose live cells do not overlap share one
// physical frame. kmalloc does not mesh; this walks the resident OS pages of every lane page and
// counts how many frames a greedy first-fit meshing of pages with the same cell layout would free, so
// that the KMALLOC_STATS summary tells whether meshing would pay on a program (see the README).
#pragma once
#include <cstddef>

namespace km {

struct Page;

struct MeshEstimate {
  size_t resident;   // bytes of resident OS pages in lane pages that hold a live cell
  size_t pairs;      // bytes freed meshing at most two OS pages into one frame
  size_t any;        // bytes freed meshing any number of OS pages into one frame
};
// Walks every lane page under the segments lock; reads the free tags of its cells. Maps scratch
// memory for the walk (unmapped before it returns). false if that fails.
bool mesh_estimate(MeshEstimate* out);
// The same over the given lane pages only (owner thread, or pages nobody else touches: tests).
bool mesh_estimate_pages(const Page* const* pages, size_t n, MeshEstimate* out);

}  // namespace km
