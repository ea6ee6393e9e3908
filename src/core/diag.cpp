// diag.cpp — see diag.h.
#include "core/diag.h"

#include "platform/os.h"

namespace km {

Msg& Msg::str(const char* s) {
  while (*s) {
    if (*s == '\n') line_start_ = len_ + 1;
    put(*s++);
  }
  return *this;
}

Msg& Msg::num(uint64_t v) {
  char tmp[24];
  int n = 0;
  do tmp[n++] = char('0' + v % 10); while ((v /= 10) != 0);
  while (n) put(tmp[--n]);
  return *this;
}

Msg& Msg::snum(int64_t v) {
  if (v < 0) {
    put('-');
    return num(uint64_t(-(v + 1)) + 1);
  }
  return num(uint64_t(v));
}

Msg& Msg::hex(uint64_t v) {
  put('0');
  put('x');
  char tmp[16];
  int n = 0;
  do tmp[n++] = "0123456789abcdef"[v & 15]; while ((v >>= 4) != 0);
  while (n) put(tmp[--n]);
  return *this;
}

Msg& Msg::bytes(uint64_t v) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  uint64_t whole = v, tenth = 0;
  while (whole >= 1024 && u < 4) {
    tenth = (whole % 1024) * 10 / 1024;
    whole /= 1024;
    ++u;
  }
  num(whole);
  if (u > 0) {
    put('.');
    put(char('0' + tenth));
  }
  put(' ');
  return str(units[u]);
}

Msg& Msg::pad(size_t col) {
  while (len_ - line_start_ < col && len_ < sizeof buf_) put(' ');
  return *this;
}

void Msg::emit() {
  os::write_stderr(buf_, len_);
  len_ = 0;
  line_start_ = 0;
}

void fatal_pointer(const char* call, const char* what, const void* p) {
  Msg m;
  m.str("kmalloc: ").str(call).str("(): ").str(what).str(" ").ptr(p).str("\n").emit();
  os::abort_now();
}

void fatal(const char* what) {
  Msg m;
  m.str("kmalloc: ").str(what).str("\n").emit();
  os::abort_now();
}

}  // namespace km
