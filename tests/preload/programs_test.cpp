// Real programs under LD_PRELOAD=libkmalloc.so: their output must equal the run under glibc, and
// KMALLOC_STATS must show that kmalloc served them. Paths come from the environment (meson test).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <regex>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

namespace {

struct Result {
  int status;
  std::string out, err;
};

std::string lib() { return std::getenv("KMALLOC_LIB"); }

std::string slurp(const std::string& path) {
  std::string s;
  if (FILE* f = std::fopen(path.c_str(), "rb")) {
    char buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
    std::fclose(f);
  }
  return s;
}

// Runs `cmd` with /bin/sh in a scratch directory; env_prefix like "LD_PRELOAD=... ".
Result sh(const std::string& cmd, const std::string& env_prefix, const std::string& dir) {
  std::string out = dir + "/stdout", err = dir + "/stderr";
  std::string full = "cd " + dir + " && " + env_prefix + " sh -c '" + cmd + "' >" + out + " 2>" + err;
  int st = std::system(full.c_str());
  return Result{WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), slurp(out), slurp(err)};
}

class Programs : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kmalloc-preload-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_NE(std::getenv("KMALLOC_LIB"), nullptr);
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }

  // Same output under glibc and kmalloc; kmalloc's stats prove it ran. Returns kmalloc's stderr.
  std::string compare(const std::string& cmd, const std::string& setup = "") {
    if (!setup.empty()) {
      EXPECT_EQ(sh(setup, "", dir_).status, 0) << setup;
    }
    Result glibc = sh(cmd, "", dir_);
    EXPECT_EQ(glibc.status, 0) << cmd << "\n" << glibc.err;
    Result km = sh(cmd, "LD_PRELOAD=" + lib() + " KMALLOC_STATS=1", dir_);
    EXPECT_EQ(km.status, 0) << cmd << "\n" << km.err;
    EXPECT_EQ(km.out, glibc.out) << cmd;
    EXPECT_FALSE(km.out.empty()) << cmd;
    EXPECT_NE(km.err.find("kmalloc: statistics"), std::string::npos) << km.err;
    std::smatch m;
    EXPECT_TRUE(std::regex_search(km.err, m, std::regex("mmap ([0-9]+)")) && std::stol(m[1]) > 0)
        << "kmalloc mapped nothing: it did not serve the program\n" << km.err;
    return km.err;
  }

  std::string dir_;
};

TEST_F(Programs, Python3BuildsAndDropsDictsAndStrings) {
  std::string script =
      "import hashlib, json\n"
      "h = hashlib.sha256()\n"
      "for r in range(12):\n"
      "    d = {str(i) + \"-\" + str(r): [i] * (i % 17) for i in range(20000)}\n"
      "    s = json.dumps(d, sort_keys=True)\n"
      "    h.update(s.encode())\n"
      "    del d, s\n"
      "print(h.hexdigest())\n";
  FILE* f = std::fopen((dir_ + "/work.py").c_str(), "w");
  std::fputs(script.c_str(), f);
  std::fclose(f);
  compare("/usr/bin/python3 work.py");
}

TEST_F(Programs, GccCompilesAFile) {
  std::string src =
      "#include <stdio.h>\n#include <string.h>\n"
      "struct S { int a[64]; };\n"
      "static int f(const char* s) { int h = 0; while (*s) h = h * 31 + *s++; return h; }\n"
      "int main(int c, char** v) { struct S s; memset(&s, 0, sizeof s);\n"
      "  for (int i = 0; i < c; ++i) s.a[i % 64] += f(v[i]); printf(\"%d\\n\", s.a[0]); return 0; }\n";
  FILE* f = std::fopen((dir_ + "/prog.c").c_str(), "w");
  std::fputs(src.c_str(), f);
  std::fclose(f);
  compare("gcc -O2 -c prog.c -o prog.o && md5sum prog.o && gcc prog.o -o prog && ./prog a b c");
}

TEST_F(Programs, SortOnALargeInput) {
  compare("sort input.txt | md5sum && sort -n -r input.txt | tail -3",
          "awk \"BEGIN { srand(42); for (i = 0; i < 400000; i++) print int(rand() * 1000000000), i }\" "
          "> input.txt");
}

TEST_F(Programs, GitCommitsAndLogs) {
  std::string env =
      "export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@e GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@e "
      "GIT_AUTHOR_DATE=2000-01-01T00:00:00Z GIT_COMMITTER_DATE=2000-01-01T00:00:00Z HOME=. "
      "GIT_CONFIG_NOSYSTEM=1; ";
  // A fresh repository each run, so both runs do the same work.
  compare(env +
          "rm -rf r && git init -q r && cd r && for i in $(seq 1 30); do seq $i 5000 > f$i.txt; done && "
          "git add . && git commit -q -m one && git mv f1.txt g1.txt && git commit -q -m two && "
          "git log --stat --format=%H%n%s | md5sum && git rev-parse HEAD && git gc -q && git fsck --no-progress");
}

TEST_F(Programs, AThreadedCxxProgram) {
  std::string prog = std::getenv("KMALLOC_THREADED_PROGRAM");
  std::string err = compare(prog + " 4 20000");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(err, m, std::regex("heaps ([0-9]+)")));
  EXPECT_GE(std::stol(m[1]), 2) << "threads did not get heaps of their own\n" << err;
}

TEST_F(Programs, ASingleThreadedProgramAndItsForkedChildGetNoThread) {
  std::string prog = std::getenv("KMALLOC_SINGLE_THREAD_PROGRAM");
  Result plain = sh(prog, "", dir_);
  EXPECT_EQ(plain.status, 0) << plain.out;
  Result km = sh(prog, "LD_PRELOAD=" + lib(), dir_);
  EXPECT_EQ(km.status, 0) << "kmalloc started a thread: " << km.out << km.err;
  EXPECT_EQ(km.out, "threads: 1 1\n");
}

// posix_spawn, vfork + execve and system() from a program whose threads allocate all the while
// (issue 11): every child runs (under kmalloc too: it inherits LD_PRELOAD) and exits 0.
TEST_F(Programs, PosixSpawnFromAThreadedProgram) {
  compare(std::string(std::getenv("KMALLOC_SPAWN_PROGRAM")) + " posix_spawn 100");
}
TEST_F(Programs, VforkAndExecFromAThreadedProgram) {
  compare(std::string(std::getenv("KMALLOC_SPAWN_PROGRAM")) + " vfork 100");
}
TEST_F(Programs, SystemFromAThreadedProgram) {
  compare(std::string(std::getenv("KMALLOC_SPAWN_PROGRAM")) + " system 100");
}

TEST_F(Programs, VerboseSaysKmallocIsActive) {
  Result r = sh("/bin/true", "LD_PRELOAD=" + lib() + " KMALLOC_VERBOSE=1", dir_);
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.err.find("kmalloc: active"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("KMALLOC_PURGE_DELAY_MS="), std::string::npos) << r.err;
}

TEST_F(Programs, BadOptionValuesWarnAndKeepTheDefault) {
  Result r = sh("/bin/true", "LD_PRELOAD=" + lib() + " KMALLOC_PURGE_DELAY_MS=soon", dir_);
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.err.find("KMALLOC_PURGE_DELAY_MS=soon is not a number"), std::string::npos) << r.err;
}

}  // namespace
