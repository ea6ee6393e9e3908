"""Tests of scripts/ab's Python side: /proc parsing, the probe file reader, the error cases, and a
small end-to-end run. Run by meson (suite 'ab') with AB_BUILD_DIR, AB_PROBE_LIB, AB_PROBE_SCRIPT set.
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
sys.path.insert(0, os.path.join(REPO, "scripts"))

from ablib import procfs, runner  # noqa: E402
from ablib.allocators import Allocator  # noqa: E402
from ablib.probe import Reader  # noqa: E402

# meson sets MALLOC_PERTURB_, which makes glibc fill every block: slow, and not what users run.
os.environ.pop("MALLOC_PERTURB_", None)
BUILD = os.environ.get("AB_BUILD_DIR", os.path.join(REPO, "build"))
PROBE = os.environ.get("AB_PROBE_LIB", os.path.join(BUILD, "bench", "probe", "libkmprobe.so"))
SCRIPT = os.environ.get("AB_PROBE_SCRIPT", os.path.join(BUILD, "tests", "ab", "ab_probe_script"))
AB = os.path.join(REPO, "scripts", "ab")
MIMALLOC = "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2"

# Captured from a real system: a command name with spaces and parentheses, and a zombie.
STAT_TRICKY = ("4242 (my (weird) prog) S 4200 4242 4200 34816 4242 4194560 1234 0 5 0 "
               "150 25 0 0 20 0 3 0 123456 987654321 2560 18446744073709551615 1 1 0 0 0 0 0 0 0 "
               "0 0 0 17 1 0 0 0 0 0\n")
STAT_EXITING = ("77 (worker) R 1 77 77 0 -1 4194628 10 0 0 0 1 1 0 0 20 0 1 0 5 0 0 "
                "18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n")
STAT_ZOMBIE = ("78 (gone) Z 1 78 78 0 -1 4227084 10 0 0 0 1 1 0 0 20 0 1 0 5 0 0 "
               "18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n")
STATUS = "Name:\tpython3\nVmPeak:\t  123456 kB\nVmRSS:\t   20480 kB\nRssAnon:\t   10240 kB\nThreads:\t1\n"


def ab(*args, timeout=300):
    return subprocess.run([AB, "--no-build", "--build-dir", BUILD, *args], capture_output=True, text=True,
                          timeout=timeout)


class ProcfsTest(unittest.TestCase):
    def test_stat_with_tricky_name(self):
        st = procfs.parse_stat(STAT_TRICKY)
        self.assertEqual((st.state, st.ppid, st.minflt, st.majflt, st.utime, st.stime),
                         ("S", 4200, 1234, 5, 150, 25))
        self.assertEqual(st.rss, 2560 * procfs.PAGE_SIZE)
        self.assertFalse(st.exiting)

    def test_exiting_and_zombie(self):
        self.assertTrue(procfs.parse_stat(STAT_EXITING).exiting)  # flags has PF_EXITING
        self.assertTrue(procfs.parse_stat(STAT_ZOMBIE).exiting)

    def test_statm_and_status(self):
        self.assertEqual(procfs.parse_statm("5000 300 100 10 0 200 0\n"), 300 * procfs.PAGE_SIZE)
        st = procfs.parse_status(STATUS)
        self.assertEqual(st["VmRSS"], 20480 * 1024)
        self.assertNotIn("Threads", st)

    def test_live_child_rss_and_tree(self):
        # A child that holds 64 MiB and starts a grandchild: both are in the tree, the RSS sums them.
        code = ("import subprocess,sys,time; b=bytearray(64<<20); b[::4096]=b'x'*len(b[::4096]); "
                "p=subprocess.Popen(['sleep','5']); print('ready', flush=True); time.sleep(5)")
        child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        try:
            self.assertEqual(child.stdout.readline().strip(), "ready")
            pids = procfs.tree(child.pid)
            self.assertEqual(pids[0], child.pid)
            self.assertEqual(len(pids), 2, pids)
            total, per, root_exiting = procfs.tree_rss(child.pid)
            self.assertFalse(root_exiting)
            self.assertGreaterEqual(per[child.pid], 64 << 20)
            self.assertEqual(total, sum(per.values()))
            self.assertEqual(set(per), set(pids))
            st = procfs.stat(child.pid)
            self.assertEqual(st.ppid, os.getpid())
            # stat and statm read the same counter (the kernel batches it per CPU: allow 1 MiB)
            statm = procfs.parse_statm(open(f"/proc/{child.pid}/statm").read())
            self.assertAlmostEqual(st.rss, statm, delta=1 << 20)
        finally:
            for pid in procfs.tree(child.pid)[1:]:
                os.kill(pid, 9)
            child.kill()
            child.wait()

    def test_scan_fallback_agrees(self):
        child = subprocess.Popen(["sh", "-c", "sleep 5 & sleep 5 & wait"])
        try:
            time.sleep(0.3)
            self.assertEqual(sorted(procfs.children(child.pid)), sorted(procfs.children_by_scan(child.pid)))
            self.assertEqual(len(procfs.children(child.pid)), 2)
        finally:
            for pid in procfs.tree(child.pid)[1:]:
                os.kill(pid, 9)
            child.kill()
            child.wait()


class ProbeReaderTest(unittest.TestCase):
    """The Python reader sees what the probe wrote: the script's final live bytes, exactly."""

    def check(self, lib):
        alloc = Allocator("x", lib=lib)
        with tempfile.TemporaryDirectory() as logs:
            reader = Reader()
            env = runner.build_env(alloc, PROBE, reader.path)
            out = subprocess.run([SCRIPT], env=env, capture_output=True, text=True)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            self.assertTrue(reader.ready())
            end = [line.split() for line in out.stdout.splitlines() if line.startswith("END")]
            self.assertEqual(len(end), 1, out.stdout)
            pid, expected = int(end[0][1]), int(end[0][2])
            procs = reader.procs()
            self.assertIn(pid, procs)
            self.assertEqual(procs[pid].live, expected)
            self.assertGreater(procs[pid].probe_bytes, 0)
            self.assertEqual(len(procs), 2)  # and the fork child
            self.assertEqual(reader.procs(only={pid}).keys(), {pid})
            reader.close()
            del logs

    def test_glibc(self):
        self.check(None)

    @unittest.skipUnless(os.path.exists(MIMALLOC), "libmimalloc2.0 not installed")
    def test_mimalloc(self):
        self.check(MIMALLOC)

    def test_runner_samples_live_bytes(self):
        # run_once on the script: samples carry live bytes, RSS excludes the probe table, status 0.
        with tempfile.TemporaryDirectory() as logs:
            r = runner.Run("script", "glibc", 1, True)
            runner.run_once(r, [SCRIPT], Allocator("glibc"), PROBE, logs, interval=0.002)
            self.assertTrue(r.ok, r.error)
            self.assertEqual(r.status, 0)
            self.assertGreater(r.cpu, 0)
            self.assertGreater(r.minflt, 0)


class ErrorsTest(unittest.TestCase):
    def test_unknown_allocator(self):
        p = ab("--allocators", "glibc,nosuchalloc", "--", "true")
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown allocator 'nosuchalloc'", p.stderr)
        self.assertIn("mimalloc", p.stderr)  # lists the known ones

    def test_missing_library_names_package(self):
        p = ab("--allocators", "glibc,mimalloc", "--lib", "mimalloc=/nonexistent/libmimalloc.so.2", "--", "true")
        self.assertEqual(p.returncode, 2)
        self.assertIn("/nonexistent/libmimalloc.so.2 not found", p.stderr)
        self.assertIn("libmimalloc2.0", p.stderr)
        p = ab("--allocators", "jemalloc", "--lib", "jemalloc=/nonexistent.so", "--", "true")
        self.assertIn("libjemalloc2", p.stderr)
        p = ab("--allocators", "tcmalloc", "--lib", "tcmalloc=/nonexistent.so", "--", "true")
        self.assertIn("libtcmalloc-minimal4", p.stderr)

    def test_default_list_skips_a_missing_allocator_and_names_its_package(self):
        with tempfile.TemporaryDirectory() as out:
            p = ab("--lib", "jemalloc=/nonexistent/libjemalloc.so.2", "--runs", "1", "--timing-runs", "0",
                   "--no-plot", "--no-probe", "--out", out, "--", "true")
            self.assertIn("jemalloc skipped: install the Debian package libjemalloc2", p.stderr)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            data = json.load(open(os.path.join(out, "result.json")))
            self.assertNotIn("jemalloc", data["summary"]["true"])
            self.assertIn("glibc", data["summary"]["true"])

    def test_missing_kmalloc_says_build(self):
        p = subprocess.run([AB, "--no-build", "--build-dir", "/nonexistent-build", "--allocators", "kmalloc",
                            "--no-probe", "--", "true"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn("libkmalloc.so not found", p.stderr)
        self.assertIn("scripts/build", p.stderr)

    def test_command_failing_under_one_allocator(self):
        if not os.path.exists(MIMALLOC):
            self.skipTest("libmimalloc2.0 not installed")
        cmd = ('if [ "$KM_AB_ALLOCATOR" = mimalloc ]; then echo "line one" >&2; '
               'echo "boom: the detail" >&2; exit 3; fi; echo fine')
        with tempfile.TemporaryDirectory() as out:
            p = ab("--allocators", "glibc,mimalloc", "--runs", "1", "--timing-runs", "0", "--no-plot",
                   "--out", out, "--", "/bin/sh", "-c", cmd)
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            self.assertIn("FAILED: exit status 3", p.stdout)
            self.assertIn("boom: the detail", p.stdout)
            rows = [line for line in p.stdout.splitlines() if line.startswith("glibc ")]
            self.assertTrue(rows and "FAILED" not in rows[0], p.stdout)
            data = json.load(open(os.path.join(out, "result.json")))
            self.assertTrue(data["summary"]["sh"]["glibc"]["ok"])
            self.assertFalse(data["summary"]["sh"]["mimalloc"]["ok"])
            self.assertEqual(data["summary"]["sh"]["mimalloc"]["errors"][0]["error"], "exit status 3")

    def test_command_not_found(self):
        with tempfile.TemporaryDirectory() as out:
            p = ab("--allocators", "glibc", "--runs", "1", "--no-plot", "--no-probe", "--out", out, "--",
                   "/nonexistent/program")
            self.assertEqual(p.returncode, 1)
            self.assertIn("cannot start /nonexistent/program", p.stdout + p.stderr)

    def test_unknown_workload(self):
        p = ab("--workloads", "server,nope", "--allocators", "glibc")
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown workload nope", p.stderr)


class EndToEndTest(unittest.TestCase):
    def test_small_builtin_run(self):
        allocs = "glibc,mimalloc" if os.path.exists(MIMALLOC) else "glibc,glibc-arena2"
        with tempfile.TemporaryDirectory() as out:
            p = ab("--allocators", allocs, "--runs", "1", "--workloads", "phase,python", "--scale", "0.05",
                   "--out", out, "--json")
            self.assertEqual(p.returncode, 0, p.stderr)
            data = json.loads(p.stdout)
            for w in ("phase", "python"):
                for a in allocs.split(","):
                    e = data["summary"][w][a]
                    self.assertTrue(e["ok"], e)
                    self.assertGreater(e["peak_rss"], 1 << 20)
                    self.assertGreater(e["peak_live"], 100 << 10)
                    self.assertGreater(e["frag_avg"], 1.0)  # RSS includes code and stacks: never below live
                    self.assertLessEqual(e["avg_rss"], e["peak_rss"])
            self.assertIn("glibc", data["probe_overhead"]["phase"])
            self.assertEqual(len(data["runs"]), 2 * 2 * 2)  # workloads x allocators x (1 run + its no-probe pair)
            # Times and faults come from the run without the probe (whose per-call cost would narrow every
            # ratio), memory from the probed run.
            for r in data["runs"]:
                e = data["summary"][r["workload"]][r["allocator"]]
                if r["probe"]:
                    self.assertEqual(e["peak_rss"], r["peak_rss"])
                    self.assertIsNotNone(r["peak_live"])
                else:
                    self.assertEqual((e["wall_s"], e["cpu_s"], e["faults"]), (r["wall_s"], r["cpu_s"], r["faults"]))
                    self.assertEqual(e["timing_runs"], 1)
            for f in ("summary.csv", "runs.csv", "samples.csv", "result.json", "summary.png", "summary.svg",
                      "timeline-phase.png", "timeline-python.svg", "table.txt"):
                self.assertTrue(os.path.getsize(os.path.join(out, f)) > 0, f)
            self.assertIn("workload phase", p.stderr)  # the table goes to stderr with --json


if __name__ == "__main__":
    unittest.main()
