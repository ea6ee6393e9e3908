// test_probe.cpp — the live-bytes probe counts requested bytes exactly: probe_script runs under the
// probe (in front of glibc, mimalloc and jemalloc) and every checkpoint must match to the byte; after
// the script exits, its slot in the shared file must hold exactly the bytes it leaked on purpose.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "probe_shared.h"

namespace {

const char* env_or(const char* name, const char* fallback) {
  const char* v = getenv(name);
  return v && *v ? v : fallback;
}

struct Result {
  int status = -1;
  std::string out;
  int64_t slot_live = -1;  // the script's slot, read after it exited
  int slot_count = 0;      // slots claimed in the file (the script and its fork child)
};

// Runs probe_script with LD_PRELOAD=probe[:alloc_lib] and a fresh shared file.
Result run_script(const std::string& alloc_lib, bool via_shell_exec) {
  Result res;
  char path[] = "/tmp/kmprobe-test-XXXXXX";
  int fd = mkstemp(path);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(ftruncate(fd, km::probe::kProbeFileSize), 0);
  int pipefd[2];
  EXPECT_EQ(pipe(pipefd), 0);
  std::string preload = env_or("AB_PROBE_LIB", "");
  if (!alloc_lib.empty()) preload += ":" + alloc_lib;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(pipefd[1], 1);
    close(pipefd[0]);
    setenv("LD_PRELOAD", preload.c_str(), 1);
    setenv("KM_PROBE_FILE", path, 1);
    unsetenv("MALLOC_PERTURB_");  // glibc would fill the script's 5 GiB block
    if (alloc_lib.find("jemalloc") != std::string::npos) setenv("AB_NO_PVALLOC", "1", 1);
    const char* script = env_or("AB_PROBE_SCRIPT", "");
    if (via_shell_exec) {  // the shell allocates under the probe, then exec's the script in its place
      execl("/bin/sh", "sh", "-c", "v=$(echo x); exec \"$0\"", script, static_cast<char*>(nullptr));
    }
    execl(script, script, static_cast<char*>(nullptr));
    _exit(127);
  }
  close(pipefd[1]);
  char buf[4096];
  ssize_t n;
  while ((n = read(pipefd[0], buf, sizeof buf)) > 0) res.out.append(buf, size_t(n));
  close(pipefd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  res.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  void* m = mmap(nullptr, km::probe::kProbeFileSize, PROT_READ, MAP_SHARED, fd, 0);
  EXPECT_NE(m, MAP_FAILED);
  auto* header = static_cast<km::probe::Header*>(m);
  EXPECT_EQ(header->magic, km::probe::kMagic);
  auto* slots = reinterpret_cast<km::probe::ProcSlot*>(static_cast<char*>(m) + km::probe::kSlotsOffset);
  for (uint32_t i = 0; i < km::probe::kMaxProcs; ++i) {
    if (slots[i].pid.load() > 0) ++res.slot_count;
    if (slots[i].pid.load() == pid) {
      res.slot_live = 0;
      for (auto& s : slots[i].stripes) res.slot_live += s.live.load();
    }
  }
  munmap(m, km::probe::kProbeFileSize);
  close(fd);
  unlink(path);
  return res;
}

void expect_exact(const std::string& alloc_lib, bool via_shell_exec = false) {
  if (!alloc_lib.empty() && access(alloc_lib.c_str(), R_OK) != 0) {
    GTEST_SKIP() << alloc_lib << " not installed";
  }
  Result res = run_script(alloc_lib, via_shell_exec);
  ASSERT_EQ(res.status, 0) << res.out;
  std::istringstream in(res.out);
  std::string word, name;
  int checks = 0;
  long long live = 0, expected = 0, end_expected = -1;
  int end_pid = 0;
  while (in >> word) {
    if (word == "CHECK") {
      ASSERT_TRUE(in >> name >> live >> expected) << res.out;
      EXPECT_EQ(live, expected) << "checkpoint " << name << " (off by " << live - expected << ")";
      ++checks;
    } else if (word == "END") {
      ASSERT_TRUE(in >> end_pid >> end_expected);
    }
  }
  EXPECT_EQ(checks, 12) << res.out;
  ASSERT_GT(end_expected, 0) << res.out;
  EXPECT_EQ(res.slot_live, end_expected) << "the final count seen from outside, through the file";
  // The script and its fork child each claim a slot; via the shell, so does the $(...) subshell, and the
  // script reuses the shell's slot (4 would mean the exec'ed image took a second one).
  EXPECT_EQ(res.slot_count, via_shell_exec ? 3 : 2);
}

TEST(Probe, ExactUnderGlibc) { expect_exact(""); }
TEST(Probe, ExactUnderMimalloc) { expect_exact("/usr/lib/x86_64-linux-gnu/libmimalloc.so.2"); }
TEST(Probe, ExactUnderJemalloc) { expect_exact("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"); }

// The shell's slot passes to the program it exec's, which starts from zero (the shell's heap is gone).
TEST(Probe, ExactAfterExec) { expect_exact("", true); }

TEST(Probe, ExactUnderKmalloc) {
  const char* lib = getenv("AB_KMALLOC_LIB");
  if (!lib || access(lib, R_OK) != 0) GTEST_SKIP() << "libkmalloc.so not built";
  expect_exact(lib);
}

// Without KM_PROBE_FILE the probe counts privately and the program runs normally.
TEST(Probe, RunsWithoutSharedFile) {
  pid_t pid = fork();
  if (pid == 0) {
    setenv("LD_PRELOAD", env_or("AB_PROBE_LIB", ""), 1);
    unsetenv("KM_PROBE_FILE");
    execl("/bin/sh", "sh", "-c", "x=$(echo hello); test \"$x\" = hello", static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

}  // namespace
