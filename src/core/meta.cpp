// meta.cpp — see meta.h.
#include "core/meta.h"

#include "core/lock.h"
#include "core/stats.h"
#include "platform/os.h"

namespace km {
namespace {
constexpr size_t kChunk = 64 * 1024;
SpinLock g_meta_lock;
char* g_cur = nullptr;    // guarded by g_meta_lock
char* g_end = nullptr;
}  // namespace

void* meta_alloc(size_t size) {
  size = (size + 63) & ~size_t(63);
  LockGuard g(g_meta_lock);
  if (size_t(g_end - g_cur) < size) {
    size_t len = size > kChunk ? os::page_round(size) : kChunk;
    auto* c = static_cast<char*>(os::map(len));
    if (!c) return nullptr;
    g_cur = c;
    g_end = c + len;
  }
  void* p = g_cur;
  g_cur += size;
  stats_metadata_add(long(size));
  return p;
}

void meta_fork_prepare() { g_meta_lock.lock(); }
void meta_fork_parent() { g_meta_lock.unlock(); }
void meta_fork_child(bool whole) {
  g_meta_lock.reset_in_child();
  if (!whole) g_cur = g_end = nullptr;   // the chunk's bump pointer may be torn: start a new chunk
}

}  // namespace km
