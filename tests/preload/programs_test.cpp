// Real programs under LD_PRELOAD=libkmalloc.so: their output must equal the run under glibc, and
// KMALLOC_STATS must show that kmalloc served them. Paths come from the environment (meson test).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <regex>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

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
    EXPECT_NE(km.err.find(": statistics\n"), std::string::npos) << km.err;
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

// Every line kmalloc prints starts with "kmalloc[PID] PROGRAM: ".
const std::regex kPrefix("^kmalloc\\[([0-9]+)\\] ([^:]+): (.*)$");

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < s.size()) {
    size_t nl = s.find('\n', at);
    if (nl == std::string::npos) nl = s.size();
    out.push_back(s.substr(at, nl - at));
    at = nl + 1;
  }
  return out;
}

// The lines of `text` printed by a program whose name (comm: 15 chars) starts with `prog`.
std::vector<std::string> from(const std::string& text, const std::string& prog) {
  std::vector<std::string> out;
  std::smatch m;
  for (const std::string& l : lines(text))
    if (std::regex_match(l, m, kPrefix) && prog.compare(0, m[2].length(), m[2]) == 0) out.push_back(l);
  return out;
}

size_t count(const std::vector<std::string>& ls, const std::string& what) {
  size_t n = 0;
  for (const std::string& l : ls) n += l.find(what) != std::string::npos;
  return n;
}

std::string base(const std::string& path) { return path.substr(path.rfind('/') + 1); }

TEST_F(Programs, VerboseSaysKmallocIsActive) {
  Result r = sh("/bin/true", "LD_PRELOAD=" + lib() + " KMALLOC_VERBOSE=1", dir_);
  EXPECT_EQ(r.status, 0);
  std::vector<std::string> mine = from(r.err, "true");
  ASSERT_EQ(count(mine, ": active (libkmalloc "), 1u) << r.err;
  EXPECT_EQ(count(mine, "  KMALLOC_PURGE_DELAY_MS=10 "), 1u) << r.err;
  EXPECT_EQ(count(mine, "  KMALLOC_STATS_FILE="), 1u) << r.err;
}

TEST_F(Programs, EveryReportLineNamesItsProcessAndProgram) {
  Result r = sh("sort -n /etc/passwd > /dev/null; /bin/true",
                "LD_PRELOAD=" + lib() + " KMALLOC_VERBOSE=1 KMALLOC_STATS=1", dir_);
  EXPECT_EQ(r.status, 0) << r.err;
  std::smatch m;
  std::map<std::string, std::string> program_of_pid;
  for (const std::string& l : lines(r.err)) {
    ASSERT_TRUE(std::regex_match(l, m, kPrefix)) << "a line without the prefix: " << l << "\n" << r.err;
    program_of_pid[m[1]] = m[2];
  }
  EXPECT_EQ(count(from(r.err, "sort"), ": statistics"), 1u) << r.err;
  EXPECT_EQ(count(from(r.err, "true"), ": statistics"), 1u) << r.err;
  for (auto& [pid, prog] : program_of_pid) EXPECT_NE(pid, "0");
}

TEST_F(Programs, TheBannerPrintsOncePerExecAndNotInForkChildren) {
  std::string prog = std::getenv("KMALLOC_SINGLE_THREAD_PROGRAM");
  Result r = sh(prog, "LD_PRELOAD=" + lib() + " KMALLOC_VERBOSE=1", dir_);
  EXPECT_EQ(r.status, 0) << r.err;
  std::vector<std::string> mine = from(r.err, base(prog));
  EXPECT_EQ(count(mine, ": active (libkmalloc "), 1u) << r.err;   // the program forks once
  EXPECT_EQ(count(mine, ": active in a fork child"), 0u) << r.err;
}

TEST_F(Programs, VerboseTwoAlsoNamesForkChildren) {
  std::string prog = std::getenv("KMALLOC_SINGLE_THREAD_PROGRAM");
  Result r = sh(prog, "LD_PRELOAD=" + lib() + " KMALLOC_VERBOSE=2", dir_);
  EXPECT_EQ(r.status, 0) << r.err;
  std::vector<std::string> mine = from(r.err, base(prog));
  ASSERT_EQ(count(mine, ": active (libkmalloc "), 1u) << r.err;
  ASSERT_EQ(count(mine, ": active in a fork child of "), 1u) << r.err;
  std::smatch parent, child;
  std::string banner, forked;
  for (const std::string& l : mine) {
    if (l.find(": active (") != std::string::npos) banner = l;
    if (l.find("fork child of ") != std::string::npos) forked = l;
  }
  ASSERT_TRUE(std::regex_match(banner, parent, kPrefix));
  ASSERT_TRUE(std::regex_match(forked, child, kPrefix));
  EXPECT_NE(parent[1], child[1]);
  EXPECT_EQ(forked.substr(forked.rfind(' ') + 1), parent[1].str()) << forked;
}

TEST_F(Programs, StatsFileTakesTheReportsWithThePidInItsName) {
  std::string prog = std::getenv("KMALLOC_SINGLE_THREAD_PROGRAM");
  // Relative: taken from the directory the program starts in. The fork child's report (it ends
  // with _exit, so it prints none) and the parent's land in files of their own.
  ASSERT_EQ(sh("mkdir reports", "", dir_).status, 0);
  Result r = sh(prog,
                "LD_PRELOAD=" + lib() + " KMALLOC_STATS=1 KMALLOC_VERBOSE=1 KMALLOC_STATS_FILE=reports/km-%p.txt",
                dir_);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err.find(": statistics"), std::string::npos) << "stats went to stderr:\n" << r.err;
  EXPECT_EQ(r.err.find(": active ("), std::string::npos) << "the banner went to stderr:\n" << r.err;
  Result ls = sh("ls reports", "", dir_);
  int with_stats = 0;
  for (const std::string& name : lines(ls.out)) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(name, m, std::regex("km-([0-9]+)\\.txt"))) << name;
    std::string text = slurp(dir_ + "/reports/" + name);
    for (const std::string& l : lines(text)) {
      std::smatch p;
      ASSERT_TRUE(std::regex_match(l, p, kPrefix)) << l;
      EXPECT_EQ(p[1], m[1]) << "a report of another process in " << name << ":\n" << text;
    }
    if (!from(text, base(prog)).empty()) {
      with_stats += count(lines(text), ": statistics") == 1;
      EXPECT_EQ(count(lines(text), ": active (libkmalloc "), 1u) << text;
    }
  }
  EXPECT_EQ(with_stats, 1) << ls.out;
}

TEST_F(Programs, TheLaneTableSaysWhatALaneIsAndLeavesEmptyLanesOut) {
  Result r = sh("sort -n /etc/passwd > /dev/null", "LD_PRELOAD=" + lib() + " KMALLOC_STATS=1", dir_);
  EXPECT_EQ(r.status, 0) << r.err;
  std::vector<std::string> mine = from(r.err, "sort");
  EXPECT_EQ(count(mine, "lane = size class"), 1u) << r.err;
  std::regex row(".*:   ([0-9]+) +([0-9]+) +[0-9.]+ [KMG]?i?B +([0-9]+) +([0-9]+)$");
  int rows = 0;
  for (const std::string& l : mine) {
    std::smatch m;
    if (!std::regex_match(l, m, row)) continue;
    ++rows;
    EXPECT_TRUE(std::stol(m[2]) > 0 || std::stol(m[3]) > 0) << "an empty lane in the table: " << l;
  }
  EXPECT_GT(rows, 2) << r.err;
  EXPECT_LT(rows, 40) << r.err;
}

TEST_F(Programs, BadOptionValuesWarnAndKeepTheDefault) {
  Result r = sh("/bin/true", "LD_PRELOAD=" + lib() + " KMALLOC_PURGE_DELAY_MS=soon", dir_);
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.err.find("KMALLOC_PURGE_DELAY_MS=soon is not a number"), std::string::npos) << r.err;
}

}  // namespace
