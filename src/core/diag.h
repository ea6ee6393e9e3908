// diag.h — messages without malloc: a fixed buffer, strings, decimal and hex numbers. Every line
// starts with "kmalloc[PID] PROGRAM: " (added by Msg itself), so a person reading the output of a
// process tree can tell which process said what.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/config.h"

namespace km {

class Msg {
 public:
  Msg& str(const char* s);
  Msg& num(uint64_t v);
  Msg& snum(int64_t v);
  Msg& hex(uint64_t v);
  Msg& ptr(const void* p) { return hex(reinterpret_cast<uintptr_t>(p)); }
  // A size with a unit: 1536 -> "1.5 KiB".
  Msg& bytes(uint64_t v);
  // Pad with spaces up to column `col` of the current line (counted after the prefix).
  Msg& pad(size_t col);
  // A report (banner, statistics): to KMALLOC_STATS_FILE if set, else stderr; then clear.
  void emit();
  // A warning or a fatal error: always to stderr; then clear.
  void emit_stderr();

 private:
  void put(char c) {
    if (at_line_start_) begin_line();
    if (len_ < sizeof buf_) buf_[len_++] = c;
    if (c == '\n') at_line_start_ = true;
  }
  void begin_line();   // the prefix, computed once per Msg (pid, program name)
  char buf_[512];
  size_t len_ = 0;
  size_t line_start_ = 0;
  bool at_line_start_ = true;
  char prefix_[64];
  size_t prefix_len_ = 0;   // 0: not computed yet
};

// "kmalloc[PID] PROGRAM: <call>(): <what> <ptr>" on stderr, then abort. Invalid and double frees.
[[noreturn]] KM_COLD void fatal_pointer(const char* call, const char* what, const void* p);
[[noreturn]] KM_COLD void fatal(const char* what);

}  // namespace km
