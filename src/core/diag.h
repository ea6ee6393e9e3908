// diag.h — messages on stderr without malloc: a fixed buffer, strings, decimal and hex numbers.
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
  // Pad with spaces up to column `col` of the current line.
  Msg& pad(size_t col);
  void emit();   // write to stderr and clear

 private:
  void put(char c) {
    if (len_ < sizeof buf_) buf_[len_++] = c;
  }
  char buf_[512];
  size_t len_ = 0;
  size_t line_start_ = 0;
};

// "kmalloc: <call>(): <what> <ptr>" on stderr, then abort. Used for invalid and double frees.
[[noreturn]] KM_COLD void fatal_pointer(const char* call, const char* what, const void* p);
[[noreturn]] KM_COLD void fatal(const char* what);

}  // namespace km
