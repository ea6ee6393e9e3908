// runtime.h — process-wide start-up, fork and exit.
#pragma once

namespace km {
// Read the options and set up process-wide state, once; safe to call from any slow path, and
// before libc is fully initialised. Allocates nothing.
void runtime_init();
}  // namespace km
