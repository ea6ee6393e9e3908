// platform_test.cpp — the platform layer's decisions: the page sizes it accepts, and reading the
// options from /proc/self/environ (before libc sets environ up) however large the environment.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

#include "platform/os.h"

extern char** environ;

namespace {

TEST(PageSize, OnlyThePageSizeOfTheBuildIsSupported) {
  static_assert(km::os::page_size_supported(4096, 4096));
  EXPECT_FALSE(km::os::page_size_supported(16384, 4096));   // arm64 with 16 KiB pages
  EXPECT_FALSE(km::os::page_size_supported(65536, 4096));   // ppc64, arm64 with 64 KiB pages
  EXPECT_FALSE(km::os::page_size_supported(2048, 4096));
  EXPECT_TRUE(km::os::page_size_supported(16384, 16384));
}

TEST(PageSize, ThisKernelIsSupported) {
  // The binary started, so runtime_init accepted the page: it must agree with the kernel here.
  EXPECT_EQ(km::os::kernel_page_size(), size_t(sysconf(_SC_PAGESIZE)));
  EXPECT_TRUE(km::os::page_size_supported(km::os::kernel_page_size(), km::os::kPageSize));
}

// The child half of the test below, which runs it in a process of its own (disabled: not run alone).
TEST(Environ, DISABLED_ChildReadsOptionsPastALargeEnvironment) {
  char** saved = environ;
  environ = nullptr;   // as before libc has set it up: getenv_raw reads /proc/self/environ
  const char* first = km::os::getenv_raw("KMALLOC_TEST_FIRST");
  const char* late = km::os::getenv_raw("KMALLOC_TEST_LATE");
  const char* other = km::os::getenv_raw("KM_TEST_FILLER_0");
  environ = saved;
  ASSERT_NE(first, nullptr);
  EXPECT_STREQ(first, "1");
  ASSERT_NE(late, nullptr) << "an option past 64 KiB of environment was dropped";
  EXPECT_STREQ(late, "after-the-filler");
  EXPECT_EQ(other, nullptr) << "only KMALLOC_ entries are kept";
}

TEST(Environ, OptionsPastALargeEnvironmentAreRead) {
  // 64 KiB of other variables (more than the old 32 KiB buffer), then an option.
  std::string filler(1000, 'x');
  std::vector<std::string> env = {"KMALLOC_TEST_FIRST=1"};
  for (int i = 0; i < 64; ++i) env.push_back("KM_TEST_FILLER_" + std::to_string(i) + "=" + filler);
  env.push_back("KMALLOC_TEST_LATE=after-the-filler");
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  ASSERT_GT(n, 0);
  exe[n] = 0;
  char filter[] = "--gtest_filter=Environ.DISABLED_ChildReadsOptionsPastALargeEnvironment";
  char disabled[] = "--gtest_also_run_disabled_tests";
  char* argv[] = {exe, filter, disabled, nullptr};
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    execve(exe, argv, envp.data());
    _exit(127);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the child's checks failed (see its output above)";
}

}  // namespace
