// diag.cpp — see diag.h.
#include "core/diag.h"

#include "platform/os.h"

namespace km {

void Msg::begin_line() {
  at_line_start_ = false;
  if (prefix_len_ == 0) {
    char name[32];
    os::program_name(name, sizeof name);
    size_t n = 0;
    auto add = [&](const char* s) {
      while (*s && n < sizeof prefix_ - 1) prefix_[n++] = *s++;
    };
    add("kmalloc[");
    char pid[24];
    int k = 0;
    for (uint64_t v = uint64_t(os::process_id()); k == 0 || v; v /= 10) pid[k++] = char('0' + v % 10);
    while (k && n < sizeof prefix_ - 1) prefix_[n++] = pid[--k];
    add("]");
    if (name[0]) {
      add(" ");
      add(name);
    }
    add(": ");
    prefix_len_ = n;
  }
  for (size_t i = 0; i < prefix_len_ && len_ < sizeof buf_; ++i) buf_[len_++] = prefix_[i];
  line_start_ = len_;
}

Msg& Msg::str(const char* s) {
  while (*s) put(*s++);
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
  if (at_line_start_) begin_line();
  while (len_ - line_start_ < col && len_ < sizeof buf_) put(' ');
  return *this;
}

void Msg::emit() {
  os::write_report(buf_, len_);
  len_ = 0;
  line_start_ = 0;
  at_line_start_ = true;
}

void Msg::emit_stderr() {
  os::write_stderr(buf_, len_);
  len_ = 0;
  line_start_ = 0;
  at_line_start_ = true;
}

void fatal_pointer(const char* call, const char* what, const void* p) {
  Msg m;
  m.str(call).str("(): ").str(what).str(" ").ptr(p).str("\n").emit_stderr();
  os::abort_now();
}

void fatal(const char* what) {
  Msg m;
  m.str(what).str("\n").emit_stderr();
  os::abort_now();
}

}  // namespace km
