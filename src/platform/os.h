// os.h — the only door to the kernel. Everything above this layer asks for "map", "purge" or
// "write to stderr"; only os.cpp knows about mmap, madvise, mremap, /proc and raw file descriptors.
//
// Contract of every primitive: it never allocates through libc, never takes a lock, preserves errno
// (callers set errno themselves), and is async-signal-safe. Sizes are multiples of page_size()
// unless stated otherwise. Failures return nullptr/false; they are counted in the stats.
#pragma once
#include <cstddef>
#include <cstdint>

namespace km::os {

constexpr size_t kPageSize = 4096;     // the smallest page we assume; checked at init against sysconf

// Fresh anonymous read/write memory, zero-filled, page-aligned. nullptr when the OS refuses.
void* map(size_t size);
// Like map, but the result is aligned to `align` (a power of two >= kPageSize); trims the excess.
void* map_aligned(size_t size, size_t align);
// Return a mapping (or a page-aligned part of one) to the OS.
bool unmap(void* p, size_t size);
// Give the physical pages back but keep the addresses: the next touch sees zeros (MADV_DONTNEED).
bool purge(void* p, size_t size);
// Grow or shrink a mapping where it is (mremap without MAYMOVE): false when the addresses after it are
// taken (or on failure); the mapping is then unchanged. Shrinking always succeeds unless injected.
bool resize_in_place(void* p, size_t old_size, size_t new_size);
// Move a mapping's pages (resident ones stay resident) to `target`, an existing mapping of new_size
// bytes that it replaces, growing or shrinking it to new_size. false on failure: both are unchanged.
bool move_to(void* p, size_t old_size, size_t new_size, void* target);
// Make a range inaccessible (guard pages) or accessible again.
bool protect_none(void* p, size_t size);
bool protect_rw(void* p, size_t size);

// Test hook (used by the fault-injection tests only): make the Nth next call of map/map_aligned/
// purge/remap/protect_* fail (1 = the next one). 0 disables. Not thread-safe to change while others
// allocate.
enum class Fault : int { map = 0, purge = 1, remap = 2, protect = 3, count = 4 };
void inject_failure(Fault which, long nth);

// Monotonic milliseconds (vDSO clock_gettime: no syscall, no allocation).
int64_t now_ms();
// Write all of buf to fd 2 (or to its duplicate, see keep_stderr), retrying on EINTR; errors ignored.
void write_stderr(const char* buf, size_t len);
// Keep a duplicate of fd 2 for messages at exit: programs like sort close stderr in an atexit handler.
void keep_stderr();
// Reports (the KMALLOC_VERBOSE banner, the KMALLOC_STATS summary) go to stderr, or to the file set
// here (KMALLOC_STATS_FILE): copied at init, made absolute against the current directory, "%p"
// replaced by the pid of the process writing. Each write opens the file (appending, created 0644),
// writes and closes it, so no descriptor of ours lingers where the program manages its own. False if
// the path is too long (kept: none). Call once, at init.
bool set_report_file(const char* path);
const char* report_file();   // the path as set (with "%p"), "" if none
// Write buf to the report file, or to stderr if none is set or it cannot be opened.
void write_report(const char* buf, size_t len);
// This process's id and its parent's (raw getpid/getppid).
int process_id();
int parent_process_id();
// The program's name for message prefixes: /proc/self/comm, else the basename of argv[0] from
// /proc/self/cmdline; "" if neither can be read. NUL-terminated, at most cap - 1 chars.
void program_name(char* buf, size_t cap);
// Run fn in the child after every fork (pthread_atfork). Only after init: registration may allocate.
void on_fork_child(void (*fn)());
// Resident set size of this process in bytes (raw read of /proc/self/statm), 0 if unknown.
size_t resident_bytes();
// Bytes of [p, p + size) resident in memory (mincore); p page-aligned. 0 if unknown.
size_t resident_in(const void* p, size_t size);
// The value of environment variable `name` (e.g. "KMALLOC_STATS"), or nullptr. Reads `environ`
// directly, or /proc/self/environ before libc has set environ up. Returns nullptr in setuid/setgid
// programs (AT_SECURE), so options there are silently ignored.
const char* getenv_raw(const char* name);
// The calling thread's kernel id (gettid), cached by the caller where it matters.
int thread_id();
// Random bits from the kernel (getrandom), falling back to clock and address entropy.
uint64_t random_u64();
[[noreturn]] void abort_now();

// Counters of kernel calls, bumped by the primitives above (relaxed atomics).
struct Counters {
  size_t mmap_count, munmap_count, purge_count, purged_bytes, remap_count, mapped_bytes;
};
Counters counters();

}  // namespace km::os
