"""Running one command under one allocator while sampling its memory every few milliseconds."""
import os
import signal
import subprocess
import time

from . import procfs
from .probe import ENV as PROBE_ENV, Reader

STDERR_TAIL_LINES = 15


class Run:
    """The measurements of one run. Bytes are bytes, times are seconds."""

    def __init__(self, workload, allocator, index, probe):
        self.workload, self.allocator, self.index, self.probe = workload, allocator, index, probe
        self.status = None          # exit status (negative: killed by that signal)
        self.error = None           # why the run counts as failed, or None
        self.stderr_tail = ""
        self.wall = self.cpu = 0.0
        self.minflt = self.majflt = 0
        self.maxrss_kernel = 0      # ru_maxrss of the command (largest single process, probe included)
        self.samples = []           # (t, rss, live); rss excludes the probe's own table; live None w/o probe
        self.probe_bytes = 0        # resident bytes of the probe's table at the end
        self.foreign_frees = 0

    @property
    def ok(self):
        return self.error is None

    # -- derived metrics --------------------------------------------------------------------------
    def _series(self, k):
        return [(s[0], s[k]) for s in self.samples if s[k] is not None]

    @staticmethod
    def _time_avg(series):
        if not series:
            return None
        if len(series) == 1:
            return float(series[0][1])
        area = 0.0
        for (t0, v0), (t1, v1) in zip(series, series[1:]):
            area += (t1 - t0) * (v0 + v1) / 2
        span = series[-1][0] - series[0][0]
        return area / span if span > 0 else float(series[-1][1])

    def metrics(self):
        rss, live = self._series(1), self._series(2)
        m = {
            "wall_s": self.wall,
            "cpu_s": self.cpu,
            "peak_rss": max((v for _, v in rss), default=None),
            "avg_rss": self._time_avg(rss),
            "final_rss": rss[-1][1] if rss else None,
            "faults": self.minflt + self.majflt,
            "peak_live": max((v for _, v in live), default=None) if live else None,
            "avg_live": self._time_avg(live) if live else None,
            "final_live": live[-1][1] if live else None,
            "samples": len(self.samples),
        }
        m["frag_avg"] = _ratio(m["avg_rss"], m["avg_live"])
        m["frag_peak"] = _ratio(m["peak_rss"], m["peak_live"])
        m["frag_end"] = _ratio(m["final_rss"], m["final_live"])
        return m


def _ratio(a, b):
    return a / b if a is not None and b else None


def build_env(allocator, probe_lib, probe_file, extra_env=None):
    env = dict(os.environ)
    env.update(extra_env or {})
    env.update(allocator.env)
    preload = [p for p in (probe_lib, allocator.lib) if p]
    if env.get("LD_PRELOAD"):
        preload.append(env["LD_PRELOAD"])
    if preload:
        env["LD_PRELOAD"] = ":".join(preload)
    if probe_file:
        env[PROBE_ENV] = probe_file
    env["KM_AB_ALLOCATOR"] = allocator.name
    return env


def run_once(run, argv, allocator, probe_lib, log_dir, interval=0.01, timeout=600.0, extra_env=None):
    """Runs argv under allocator (and the probe, if probe_lib), filling `run`. Never raises for a
    failing command: the failure goes to run.error with the stderr tail."""
    reader = Reader() if probe_lib else None
    env = build_env(allocator, probe_lib, reader.path if reader else None, extra_env)
    base = f"{run.workload}.{allocator.name}.{run.index}{'' if probe_lib else '.noprobe'}"
    out_path = os.path.join(log_dir, base + ".stdout")
    err_path = os.path.join(log_dir, base + ".stderr")
    try:
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            t0 = time.monotonic()
            try:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                                        start_new_session=True)
            except OSError as e:
                run.error = f"cannot start {argv[0]}: {e.strerror}"
                run.status = 127
                return run
            _sample_until_exit(run, proc, reader, t0, interval, timeout)
    finally:
        if reader:
            reader.close()
    run.stderr_tail = _tail(err_path)
    if run.error is None and run.status != 0:
        run.error = (f"exit status {run.status}" if run.status > 0
                     else f"killed by signal {-run.status} ({signal.Signals(-run.status).name})")
    return run


def _sample_until_exit(run, proc, reader, t0, interval, timeout):
    pid = proc.pid
    next_tick = t0
    deadline = t0 + timeout
    probe_ready = False
    while True:
        done, status, ru = os.wait4(pid, os.WNOHANG)
        now = time.monotonic()
        if done:
            run.wall = now - t0
            break
        if now > deadline:
            run.error = f"timed out after {timeout:.0f} s"
            os.killpg(pid, signal.SIGKILL)
            done, status, ru = os.wait4(pid, 0)
            run.wall = time.monotonic() - t0
            break
        total, per, root_exiting = procfs.tree_rss(pid)
        live = None
        probe_bytes = 0
        if reader is not None:
            probe_ready = probe_ready or reader.ready()
            if probe_ready:
                counters = reader.procs(only=per)
                live = sum(c.live for c in counters.values())
                probe_bytes = sum(c.probe_bytes for c in counters.values())
                if counters:  # (none once the root is exiting: keep the last values)
                    run.probe_bytes = probe_bytes
                    run.foreign_frees = sum(c.foreign_frees for c in counters.values())
        if not root_exiting:
            run.samples.append((now - t0, total - probe_bytes, live))
        next_tick += interval
        delay = next_tick - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            next_tick = time.monotonic()
    run.status = os.waitstatus_to_exitcode(status)
    run.cpu = ru.ru_utime + ru.ru_stime
    run.minflt, run.majflt = ru.ru_minflt, ru.ru_majflt
    run.maxrss_kernel = ru.ru_maxrss * 1024
    proc.returncode = run.status  # so Popen does not wait again


def _tail(path, lines=STDERR_TAIL_LINES):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 8192))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
