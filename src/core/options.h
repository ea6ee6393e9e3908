// options.h — every KMALLOC_* option, read once at start-up from the environment (see options.cpp
// for the table: name, default, range, one-line doc). A bad value warns and keeps the default.
#pragma once
#include "core/config.h"

namespace km {

enum class Opt : int {
  verbose,          // KMALLOC_VERBOSE
  stats,            // KMALLOC_STATS
  purge_delay_ms,   // KMALLOC_PURGE_DELAY_MS
  purge_thread,     // KMALLOC_PURGE_THREAD
  large_cache_mb,   // KMALLOC_LARGE_CACHE_MB
  secure,           // KMALLOC_SECURE
  stats_file,       // KMALLOC_STATS_FILE (a path: the value here is 1 when set)
  count
};

// One row of the table. A path option (is_path) has no number: its value is 1 when set, and the
// path goes to the platform layer. scripts/options_doc.py reads these rows for the README's options
// table and the man pages: keep each row's fields literal.
struct OptionInfo {
  const char* name;
  long def, min, max;
  const char* doc;
  bool is_path = false;
};

// Values are plain globals after init: read on slow paths, never written again.
extern long g_options[int(Opt::count)];
inline long option(Opt o) { return g_options[int(o)]; }
const OptionInfo& option_info(Opt o);

// Read the environment (idempotent, no allocation). Warnings go to stderr.
void options_init();
// KMALLOC_VERBOSE=1: the banner with every option's value (in the process that loaded the library:
// fork children print one line too only with KMALLOC_VERBOSE=2). Call after init: it may allocate.
void options_print();

}  // namespace km
