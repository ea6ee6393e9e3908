// fork.h — the fork handlers (fork.cpp): every lock in one order, the child's reset.
#pragma once

namespace km {
// Register the handlers with the platform; once, when the library is loaded (entry.cpp).
void fork_install();
}  // namespace km
