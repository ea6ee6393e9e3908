"""Where the A/B tool finds kmalloc, the probe and the built-in workloads: in a build directory of a
checkout (scripts/ab), or where the packages installed them (kmalloc-ab)."""
import os


class Layout:
    def __init__(self, prog, kmalloc_lib, kmalloc_hint, probe_lib, probe_hint, workload_dir, python_script,
                 default_out, build_dir=None, version=None):
        self.prog = prog                    # the command's name in messages and --help
        self.kmalloc_lib = kmalloc_lib      # the libkmalloc.so to preload
        self.kmalloc_hint = kmalloc_hint    # what to do when it is missing
        self.probe_lib = probe_lib          # libkmprobe.so
        self.probe_hint = probe_hint
        self.workload_dir = workload_dir    # ab_server, ab_phase, ab_handoff
        self.python_script = python_script  # python_dicts.py
        self.default_out = default_out
        self.build_dir = build_dir          # None when installed
        self.version = version              # kmalloc's version (installed: for --version)

    @classmethod
    def checkout(cls, repo, build_dir):
        """scripts/ab: everything from BUILD_DIR (scripts/build), the Python workload from the tree."""
        return cls(prog="scripts/ab",
                   kmalloc_lib=os.path.join(build_dir, "preload", "libkmalloc.so"),
                   kmalloc_hint="build it with scripts/build (scripts/ab does, unless --no-build)",
                   probe_lib=os.path.join(build_dir, "bench", "probe", "libkmprobe.so"),
                   probe_hint="build with scripts/build, or use --no-probe",
                   workload_dir=os.path.join(build_dir, "bench", "ab"),
                   python_script=os.path.join(repo, "bench", "ab", "python_dicts.py"),
                   default_out=os.path.join(repo, "out", "ab"),
                   build_dir=build_dir)

    @classmethod
    def installed(cls, prefix, libdir, libexecdir, privdir, datadir, version=None):
        """kmalloc-ab: the directories relative to the install prefix (meson's libdir;
        libexecdir/kmalloc: the workloads; lib/kmalloc: the probe; datadir/kmalloc), so a tree unpacked anywhere (dpkg -x, meson install --destdir) works as it is.
        KMALLOC_LIB overrides the library, as for the kmalloc launcher."""
        lib = os.environ.get("KMALLOC_LIB") or os.path.join(prefix, libdir, "libkmalloc.so.0")
        return cls(prog="kmalloc-ab",
                   kmalloc_lib=lib,
                   kmalloc_hint="install the Debian package libkmalloc0 (or set KMALLOC_LIB=/path/to/libkmalloc.so.0)",
                   probe_lib=os.path.join(prefix, privdir, "libkmprobe.so"),
                   probe_hint="reinstall kmalloc-tools, or use --no-probe",
                   workload_dir=os.path.join(prefix, libexecdir),
                   python_script=os.path.join(prefix, datadir, "ab", "python_dicts.py"),
                   default_out=os.path.join(os.getcwd(), "kmalloc-ab-out"), version=version)
