"""The sampler's side of the live-bytes probe: the shared file of bench/probe/probe_shared.h.

The constants below mirror probe_shared.h; Reader.check() verifies them against the header the probe
writes, so a mismatch is an error, not silently wrong numbers.
"""
import mmap
import os
import struct
import tempfile

MAGIC = 0x31424F5250424B4D
VERSION = 1
MAX_PROCS = 256
STRIPES = 64
SLOTS_OFFSET = 4096
SLOT_SIZE = 64 + 64 * STRIPES
FILE_SIZE = SLOTS_OFFSET + MAX_PROCS * SLOT_SIZE
ENV = "KM_PROBE_FILE"

_HEADER = struct.Struct("<QIIIII")       # magic version max_procs stripes slot_size slots_offset
_SLOT_HEAD = struct.Struct("<iIQQQ")     # pid reserved probe_bytes foreign_frees untracked
_STRIPES = struct.Struct("<" + "qqq40x" * STRIPES)           # live allocs frees, per stripe
_PIDS = struct.Struct("<" + ("i%dx" % (SLOT_SIZE - 4)) * MAX_PROCS)  # pid of every slot


def shm_dir():
    return "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()


class ProcCounters:
    __slots__ = ("pid", "live", "allocs", "frees", "probe_bytes", "foreign_frees", "untracked")

    def __init__(self, pid, live, allocs, frees, probe_bytes, foreign_frees, untracked):
        self.pid, self.live, self.allocs, self.frees = pid, live, allocs, frees
        self.probe_bytes, self.foreign_frees, self.untracked = probe_bytes, foreign_frees, untracked


class Reader:
    """Creates the zeroed shared file and reads the per-process counters from it."""

    def __init__(self, path=None):
        if path is None:
            fd, path = tempfile.mkstemp(prefix="kmprobe-", dir=shm_dir())
        else:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        self.path = path
        os.ftruncate(fd, FILE_SIZE)
        self.map = mmap.mmap(fd, FILE_SIZE, mmap.MAP_SHARED, mmap.PROT_READ)
        os.close(fd)

    def ready(self):
        """True once a probe has initialised the file; raises if its layout differs from ours."""
        magic, version, procs, stripes, slot_size, offset = _HEADER.unpack_from(self.map, 0)
        if magic == 0:
            return False
        if (magic, version, procs, stripes, slot_size, offset) != (
                MAGIC, VERSION, MAX_PROCS, STRIPES, SLOT_SIZE, SLOTS_OFFSET):
            raise RuntimeError(
                f"probe file layout mismatch (probe writes version {version}, {procs} procs, "
                f"{stripes} stripes, slot {slot_size} B): rebuild bench/probe and scripts/ablib together")
        return True

    def procs(self, only=None):
        """Counters of the claimed slots (of the pids in `only`, if given): dict pid -> ProcCounters."""
        out = {}
        for i, pid in enumerate(_PIDS.unpack_from(self.map, SLOTS_OFFSET)):
            if pid <= 0 or (only is not None and pid not in only):
                continue
            base = SLOTS_OFFSET + i * SLOT_SIZE
            pid, _, probe_bytes, foreign, untracked = _SLOT_HEAD.unpack_from(self.map, base)
            v = _STRIPES.unpack_from(self.map, base + 64)
            out[pid] = ProcCounters(pid, sum(v[0::3]), sum(v[1::3]), sum(v[2::3]), probe_bytes,
                                    foreign, untracked)
        return out

    def close(self):
        self.map.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
