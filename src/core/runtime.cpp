// runtime.cpp — start-up: the page size check, options, secrets, the banner.
#include "core/runtime.h"

#include <atomic>

#include "core/diag.h"
#include "core/options.h"
#include "core/secure.h"
#include "platform/os.h"

namespace km {
namespace {
std::atomic<int> g_init_state{0};   // 0 not started, 1 running, 2 done

// Before anything is mapped: on a kernel page other than os::kPageSize the layers above would guard,
// purge and trim at the wrong granularity (see os::page_size_supported), so refuse to start.
void check_page_size() {
  size_t kernel = os::kernel_page_size();
  if (KM_LIKELY(os::page_size_supported(kernel, os::kPageSize))) return;
  Msg m;
  m.str("unsupported page size ").num(kernel).str(" (built for ").num(os::kPageSize).str(")\n");
  m.emit_stderr();
  os::abort_now();
}
}  // namespace

void runtime_init() {
  if (KM_LIKELY(g_init_state.load(std::memory_order_acquire) == 2)) return;
  int expected = 0;
  if (g_init_state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
    check_page_size();
    options_init();
    secure_init();
    g_page_secret = os::random_u64();   // free tags: unguessable, so no user data matches one
    g_init_state.store(2, std::memory_order_release);
    if (option(Opt::verbose)) options_print();
    if (option(Opt::stats)) os::keep_stderr();
    return;
  }
  while (g_init_state.load(std::memory_order_acquire) != 2) os::yield();
}

// Runs when the library is loaded (LD_PRELOAD or -lkmalloc), after libc is up.
__attribute__((constructor)) static void kmalloc_load() { runtime_init(); }

}  // namespace km
