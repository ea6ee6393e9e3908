// Outside tools and environments: environment options are ignored (silently) in setuid/setgid
// programs, and valgrind's memcheck finds leaks and invalid accesses in programs using kmalloc.
// The programs under test come from meson's env: KM_SETUID_PROBE, KM_LEAKY, KM_LEAKY_PLAIN,
// KMALLOC_LIB.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

struct Result {
  int status = -1;   // exit code, or 128 + signal
  std::string out;   // stdout and stderr
};

Result run(const std::string& cmd) {
  Result r;
  FILE* f = popen((cmd + " 2>&1").c_str(), "r");
  if (!f) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) r.out.append(buf, n);
  int st = pclose(f);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return r;
}

std::string env(const char* name) {
  const char* v = getenv(name);
  return v ? v : "";
}

bool have(const char* tool) { return run(std::string("command -v ") + tool).status == 0; }

bool copy_file(const std::string& from, const std::string& to, mode_t mode) {
  if (run("cp '" + from + "' '" + to + "'").status != 0) return false;
  return chown(to.c_str(), 0, 0) == 0 && chmod(to.c_str(), mode) == 0;
}

// ------------------------------------------------------------------------------------- setuid

class Setuid : public ::testing::Test {
 protected:
  void SetUp() override {
    probe_ = env("KM_SETUID_PROBE");
    if (probe_.empty()) GTEST_SKIP() << "KM_SETUID_PROBE not set (run through meson test)";
    if (geteuid() != 0) GTEST_SKIP() << "needs root: chown root + chmod u+s, then setpriv";
    if (!have("setpriv")) GTEST_SKIP() << "setpriv (util-linux) not installed";
    char tmpl[] = "/tmp/km-setuid-XXXXXX";
    if (!mkdtemp(tmpl)) GTEST_SKIP() << "mkdtemp failed";
    dir_ = tmpl;
    chmod(dir_.c_str(), 0755);
    struct statvfs vfs;
    if (statvfs(dir_.c_str(), &vfs) == 0 && (vfs.f_flag & ST_NOSUID))
      GTEST_SKIP() << dir_ << " is on a nosuid filesystem: setuid bits are ignored there";
  }
  void TearDown() override {
    if (!dir_.empty()) run("rm -rf '" + dir_ + "'");
  }
  // Run `path` as user/group 65534 (nobody) with options that normally print.
  Result as_nobody(const std::string& path) {
    return run("setpriv --reuid=65534 --regid=65534 --clear-groups env KMALLOC_VERBOSE=1 "
               "KMALLOC_STATS=1 KMALLOC_PURGE_DELAY_MS=bogus '" + path + "'");
  }
  std::string probe_, dir_;
};

TEST_F(Setuid, OptionsAreHonouredInAnOrdinaryProgram) {
  std::string plain = dir_ + "/probe-plain";
  ASSERT_TRUE(copy_file(probe_, plain, 0755));
  Result r = as_nobody(plain);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find(": active (libkmalloc "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("KMALLOC_PURGE_DELAY_MS=bogus"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(": statistics\n"), std::string::npos) << r.out;
}

TEST_F(Setuid, OptionsAreIgnoredSilentlyInASetuidProgram) {
  std::string suid = dir_ + "/probe-suid";
  ASSERT_TRUE(copy_file(probe_, suid, 04755));
  Result r = as_nobody(suid);
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out, "") << "a setuid program printed kmalloc output";
}

TEST_F(Setuid, OptionsAreIgnoredSilentlyInASetgidProgram) {
  std::string sgid = dir_ + "/probe-sgid";
  ASSERT_TRUE(copy_file(probe_, sgid, 02755));
  Result r = as_nobody(sgid);
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out, "") << "a setgid program printed kmalloc output";
}

// ------------------------------------------------------------------------------------- valgrind

class Valgrind : public ::testing::Test {
 protected:
  void SetUp() override {
    if (env("KM_LEAKY").empty()) GTEST_SKIP() << "KM_LEAKY not set (run through meson test)";
    if (!have("valgrind")) GTEST_SKIP() << "valgrind not installed (scripts/bootstrap installs it)";
  }
  static bool reports_both(const Result& r) {
    return r.out.find("definitely lost: 1,000 bytes in 1 blocks") != std::string::npos &&
           r.out.find("Invalid write of size 1") != std::string::npos;
  }
};

// The documented invocation for a program linked with -lkmalloc.
TEST_F(Valgrind, MemcheckFindsTheLeakAndTheOverflowOfAProgramLinkedWithKmalloc) {
  Result r = run("valgrind --tool=memcheck --soname-synonyms='somalloc=libkmalloc.so*' "
                 "--leak-check=full --error-exitcode=42 '" + env("KM_LEAKY") + "'");
  EXPECT_EQ(r.status, 42) << r.out;
  EXPECT_TRUE(reports_both(r)) << r.out;
  EXPECT_NE(r.out.find("leaky: done"), std::string::npos) << r.out;
}

// The documented invocation for a program that gets kmalloc by LD_PRELOAD.
TEST_F(Valgrind, MemcheckFindsThemUnderLdPreloadToo) {
  if (env("KM_LEAKY_PLAIN").empty() || env("KMALLOC_LIB").empty()) GTEST_SKIP();
  Result r = run("LD_PRELOAD='" + env("KMALLOC_LIB") + "' KMALLOC_VERBOSE=1 valgrind "
                 "--tool=memcheck --soname-synonyms='somalloc=libkmalloc.so*' --leak-check=full "
                 "--error-exitcode=42 '" + env("KM_LEAKY_PLAIN") + "'");
  EXPECT_EQ(r.status, 42) << r.out;
  EXPECT_TRUE(reports_both(r)) << r.out;
  EXPECT_NE(r.out.find(": active (libkmalloc "), std::string::npos) << "kmalloc was not loaded\n" << r.out;
}

// Without the synonym: 3.19 on Debian 12 redirects libkmalloc's malloc by itself, another valgrind
// may leave kmalloc in charge. Either way the program must run to its end under valgrind, and what
// valgrind says must match its exit status: both bugs reported (exit 42), or none seen (exit 0,
// kmalloc served the blocks). A crash, a hang, or half a redirection (valgrind's free on kmalloc's
// blocks: "Invalid free") fails.
TEST_F(Valgrind, WithoutTheSynonym) {
  Result r = run("valgrind --tool=memcheck --leak-check=full --error-exitcode=42 '" +
                 env("KM_LEAKY") + "'");
  std::printf("valgrind without --soname-synonyms: exit %d, leak and overflow %s\n", r.status,
              reports_both(r) ? "reported" : "NOT reported");
  EXPECT_NE(r.out.find("leaky: done"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("Invalid free"), std::string::npos) << r.out;
  if (reports_both(r)) EXPECT_EQ(r.status, 42) << r.out;
  else EXPECT_EQ(r.status, 0) << r.out;
  RecordProperty("without_synonym", reports_both(r) ? "reported" : "not reported");
}

}  // namespace
