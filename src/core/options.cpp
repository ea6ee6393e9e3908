// options.cpp — the option table and its parser. Documented for users in README.md ("Options").
#include "core/options.h"

#include "core/diag.h"
#include "platform/os.h"

#ifndef KM_VERSION
#define KM_VERSION "unknown"   // meson passes the project's version
#endif

namespace km {

namespace {
constexpr OptionInfo kTable[int(Opt::count)] = {
    {"KMALLOC_VERBOSE", 0, 0, 2,
     "print that kmalloc is active, and its options, at start-up (2: also in fork children)"},
    {"KMALLOC_STATS", 0, 0, 1, "print a statistics summary at exit (also malloc_stats())"},
    {"KMALLOC_PURGE_DELAY_MS", 10, -1, 3600000,
     "give empty pages back to the OS after this many ms (0 = at once, -1 = never); what others "
     "free into an idle thread's heap after 16 times this"},
    {"KMALLOC_PURGE_THREAD", 1, 0, 1,
     "in threaded programs, purge from a background thread when the program goes quiet (also "
     "what others free into an idle thread's heap)"},
    {"KMALLOC_LARGE_CACHE_MB", 64, 0, 65536,
     "keep up to this many MiB of freed huge blocks mapped for reuse (for at most the purge delay)"},
    {"KMALLOC_SECURE", KM_SECURE_DEFAULT, 0, 1,
     "encoded free lists, guard pages, random cell order, zero-on-free, overflow canaries"},
    {"KMALLOC_STATS_FILE", 0, 0, 0,
     "append the banner and statistics to this file instead of stderr (%p = the pid)", true},
};

bool parse_long(const char* s, long* out) {
  bool neg = false;
  if (*s == '-') neg = true, ++s;
  if (*s < '0' || *s > '9') return false;
  long v = 0;
  while (*s >= '0' && *s <= '9') {
    if (v > 100000000000L) return false;
    v = v * 10 + (*s++ - '0');
  }
  if (*s) return false;
  *out = neg ? -v : v;
  return true;
}
}  // namespace

long g_options[int(Opt::count)] = {
    kTable[0].def, kTable[1].def, kTable[2].def, kTable[3].def, kTable[4].def, kTable[5].def,
    kTable[6].def};

const OptionInfo& option_info(Opt o) { return kTable[int(o)]; }

void options_init() {
  for (int i = 0; i < int(Opt::count); ++i) {
    const OptionInfo& info = kTable[i];
    const char* s = os::getenv_raw(info.name);
    if (!s || !*s) continue;
    if (info.is_path) {
      if (os::set_report_file(s)) {
        g_options[i] = 1;
      } else {
        Msg m;
        m.str("warning: ").str(info.name).str(" is too long; writing to stderr\n").emit_stderr();
      }
      continue;
    }
    long v;
    if (!parse_long(s, &v) || v < info.min || v > info.max) {
      Msg m;
      m.str("warning: ").str(info.name).str("=").str(s).str(" is not a number in [")
          .snum(info.min).str(", ").snum(info.max).str("]; keeping ").snum(info.def).str("\n").emit_stderr();
      continue;
    }
    g_options[i] = v;
  }
}

namespace {
// KMALLOC_VERBOSE=2, in the child of a fork: one line, so a forking program's children show up.
void fork_child_banner() {
  Msg m;
  m.str("active in a fork child of ").num(uint64_t(os::parent_process_id())).str("\n").emit();
}
}  // namespace

void options_print() {
  Msg m;
  m.str("active (libkmalloc " KM_VERSION ", ").num(kLanesPerDoubling)
      .str(" lanes per doubling, largest lane ").bytes(kLargestLane).str(")\n").emit();
  for (int i = 0; i < int(Opt::count); ++i) {
    m.str("  ").str(kTable[i].name).str("=");
    if (kTable[i].is_path) m.str(os::report_file());
    else m.snum(g_options[i]);
    m.pad(37).str(" ").str(kTable[i].doc).str("\n").emit();
  }
  if (option(Opt::verbose) >= 2) os::on_fork_child(fork_child_banner);
}

}  // namespace km
