// os.h — the only door to the kernel. Everything above this layer asks for "map", "purge", "sleep",
// "start a thread" or "write to stderr"; only os.cpp knows about mmap, madvise, mremap, futex,
// pthreads, /proc and raw file descriptors (tests/layout/check_layers.py keeps it so).
//
// Contract of every primitive unless its comment says otherwise: it never allocates through libc,
// never takes a lock, preserves errno (callers set errno themselves), and is async-signal-safe. Sizes
// are multiples of kPageSize. Failures return nullptr/false and are not counted: Counters (at the
// end) count the calls that succeeded, which is what the statistics report.
#pragma once
#include <cstddef>
#include <cstdint>

namespace km::os {

// The kernel page size kmalloc is built for. Guard pages, purge ranges and the huge-block header are
// cut at this granularity; runtime_init refuses to start on a kernel whose page differs (see
// page_size_supported).
constexpr size_t kPageSize = 4096;
// n rounded up to a whole number of OS pages.
constexpr size_t page_round(size_t n) { return (n + kPageSize - 1) & ~(kPageSize - 1); }

// Is a kernel page of `kernel` bytes one a build for `built`-byte pages can run on? Only the same
// size. A larger kernel page (16 KiB on some arm64 kernels, 64 KiB on ppc64) breaks the layers above:
// a guard page would be a 4 KiB mprotect at an address the kernel refuses (EINVAL: every secure
// allocation fails), or, rounded to the kernel page, would cover live cells; a purge of a 4 KiB-aligned
// range fails (EINVAL) or, once its length is rounded up, throws away the live data after it; the
// huge block's 4 KiB header page shares a kernel page with the block, so trimming or guarding the
// block touches the header. A smaller page has never existed on Linux; we do not guess.
constexpr bool page_size_supported(size_t kernel, size_t built) { return kernel == built; }
// The kernel's page size (the auxiliary vector's AT_PAGESZ, as sysconf(_SC_PAGESIZE) reads it).
size_t kernel_page_size();

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
// Keep a duplicate of fd 2 (at fd 100 or above) for messages at exit: programs like sort close stderr
// in an atexit handler.
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
// Run prepare before every fork, parent and child after it (pthread_atfork; any may be nullptr). Only
// after init: registration may allocate. Not async-signal-safe.
void on_fork(void (*prepare)(), void (*parent)(), void (*child)());
// Run fn in the child after every fork: on_fork(nullptr, nullptr, fn).
void on_fork_child(void (*fn)());
// Resident set size of this process in bytes (raw read of /proc/self/statm), 0 if unknown.
size_t resident_bytes();
// Bytes of [p, p + size) resident in memory (mincore); p page-aligned. 0 if unknown.
size_t resident_in(const void* p, size_t size);
// vec[i] = 1 if page i of [p, p + pages * kPageSize) is resident, else 0 (mincore; p page-aligned,
// pages <= 256). false if the kernel refuses (vec untouched).
bool resident_pages(const void* p, size_t pages, unsigned char* vec);
// The value of environment variable `name` (e.g. "KMALLOC_STATS"), or nullptr. Reads `environ`
// directly, or /proc/self/environ before libc has set environ up (then only KMALLOC_* names are
// found: the file is read to its end, keeping those). Returns nullptr in setuid/setgid programs
// (AT_SECURE), so options there are silently ignored.
const char* getenv_raw(const char* name);
// The calling thread's kernel id (gettid), cached by the caller where it matters.
int thread_id();

// ---- threads and waiting. These may allocate (thread creation, a key's first use) and are not
// async-signal-safe; the waits (futex, sleep) are.
// Start a detached thread running fn(), with every signal blocked (it never takes the program's
// signals), a stack of stack_bytes and the name `name` (at most 15 chars, as ps shows it). false if
// the thread could not be created.
bool start_thread(void (*fn)(), const char* name, size_t stack_bytes);
// Sleep until *word != seen, a wake_one, or a spurious wake-up (futex, process-private).
void futex_wait(const uint32_t* word, uint32_t seen);
// Wake one thread in futex_wait on word.
void futex_wake_one(const uint32_t* word);
// Sleep for ms milliseconds (nanosleep; a signal may cut it short).
void sleep_ms(long ms);
// Give the CPU to another runnable thread (sched_yield): the slow path of a spin.
void yield();
// A hint to the CPU that the caller spins (x86 pause; nothing elsewhere). No system call.
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}
// A per-thread value with a destructor (pthread keys): when a thread that set a non-null value exits,
// fn(value) runs in it. thread_key_create: false if no key is left (PTHREAD_KEYS_MAX).
using ThreadKey = unsigned;
bool thread_key_create(ThreadKey* key, void (*fn)(void*));
// Set the calling thread's value of key (false on failure: no memory for the thread's key table).
bool thread_key_set(ThreadKey key, void* value);
// Random bits from the kernel (getrandom), falling back to clock and address entropy.
uint64_t random_u64();
[[noreturn]] void abort_now();

// Counters of kernel calls, bumped by the primitives above (relaxed atomics).
struct Counters {
  size_t mmap_count, munmap_count, purge_count, purged_bytes, remap_count, mapped_bytes;
};
Counters counters();

}  // namespace km::os
