"""Reading /proc: the process tree of a run, its resident memory, its page faults.

Each function takes the text of one /proc file (so tests can feed captured samples) or a pid. They
never raise for a process that vanished between two reads: a tree changes while we look at it.
"""
import os

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def parse_statm(text):
    """Resident bytes from the text of /proc/PID/statm ("size resident shared text lib data dt")."""
    fields = text.split()
    return int(fields[1]) * PAGE_SIZE


PF_EXITING = 0x4  # task flag: the process is in exit(), its memory is being torn down


class Stat:
    """The fields of /proc/PID/stat that the sampler uses."""
    __slots__ = ("state", "ppid", "flags", "minflt", "majflt", "utime", "stime", "rss")

    def __init__(self, state, ppid, flags, minflt, majflt, utime, stime, rss):
        self.state, self.ppid, self.flags = state, ppid, flags
        self.minflt, self.majflt, self.utime, self.stime, self.rss = minflt, majflt, utime, stime, rss

    @property
    def exiting(self):
        """True for a zombie or a process inside exit() (its RSS is falling to 0, not a sample)."""
        return self.state in "ZXx" or bool(self.flags & PF_EXITING)


def parse_stat(text):
    """A Stat from the text of /proc/PID/stat (rss in bytes, times in clock ticks).

    The command name (field 2) is in parentheses and may contain spaces and ')', so the fields are
    counted from the last ')'.
    """
    rest = text[text.rindex(")") + 2:].split()
    f = lambda n: int(rest[n - 3])  # noqa: E731 -- field n of proc(5), counted from 1
    return Stat(rest[0], f(4), f(9), f(10), f(12), f(14), f(15), f(24) * PAGE_SIZE)


def parse_status(text):
    """The 'Key: value kB' lines of /proc/PID/status as a dict of bytes (only the kB ones)."""
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        parts = value.split()
        if len(parts) == 2 and parts[1] == "kB":
            out[key] = int(parts[0]) * 1024
    return out


def _read(path):
    try:
        with open(path, "r") as f:
            return f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    except OSError:  # e.g. ESRCH from a task that exited mid-read
        return None


def children(pid):
    """Direct children of pid (all its threads' children). Uses /proc/PID/task/TID/children."""
    kids = []
    tasks = None
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    for tid in tasks:
        text = _read(f"/proc/{pid}/task/{tid}/children")
        if text:
            kids.extend(int(x) for x in text.split())
    return kids


def children_by_scan(pid):
    """Direct children of pid found by scanning /proc/*/stat (slow fallback, no CONFIG_PROC_CHILDREN)."""
    kids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            text = _read(f"/proc/{name}/stat")
            if text and parse_stat(text).ppid == pid:
                kids.append(int(name))
    return kids


HAVE_CHILDREN_FILE = os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children")


def tree(root):
    """root and all its descendants that are alive now (root first)."""
    find = children if HAVE_CHILDREN_FILE else children_by_scan
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(find(pid))
    return out


def stat(pid):
    """Stat of one process, or None if it is gone."""
    text = _read(f"/proc/{pid}/stat")
    if not text:
        return None
    try:
        return parse_stat(text)
    except (IndexError, ValueError):
        return None


def tree_rss(root):
    """(total resident bytes, {pid: rss}, root_exiting) for the tree's processes alive now.

    Processes inside exit() are left out: their RSS is being torn down. root_exiting tells the caller
    that the run is ending (its samples from now on would measure the teardown, not the program).
    """
    per = {}
    root_exiting = True
    for pid in tree(root):
        st = stat(pid)
        if st is None or st.exiting:
            continue
        if pid == root:
            root_exiting = False
        per[pid] = st.rss
    return sum(per.values()), per, root_exiting
