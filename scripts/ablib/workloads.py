"""The built-in workloads: programs in bench/ab/ (each file says what fragmentation it provokes)."""
import os

PYTHON = "/usr/bin/python3"


class Workload:
    def __init__(self, name, argv, env=None, about=""):
        self.name, self.argv, self.env, self.about = name, argv, env or {}, about


def builtin(workload_dir, python_script, scale=None):
    """name -> Workload, in the order they run. workload_dir holds the programs ab_server, ab_phase,
    ab_handoff; python_script is python_dicts.py. scale (a float) shrinks them, for tests."""
    arg = [str(scale)] if scale else []
    exe = lambda name: os.path.join(workload_dir, "ab_" + name)  # noqa: E731
    return {
        "server": Workload("server", [exe("server")] + arg,
                           about="long-lived sessions among short-lived messages; 90% close; new sizes"),
        "phase": Workload("phase", [exe("phase")] + arg,
                          about="small objects die (90%), larger ones take their place; twice"),
        "handoff": Workload("handoff", [exe("handoff")] + arg,
                            about="2 producer and 2 consumer threads hand blocks across"),
        "python": Workload("python", [PYTHON, python_script] + arg,
                           env={"PYTHONMALLOC": "malloc"},
                           about="python3 builds and drops dicts and strings (PYTHONMALLOC=malloc)"),
    }


def check_built(workloads, tool="scripts/ab"):
    """Messages for workloads whose program is missing."""
    how = "build with scripts/build" if tool == "scripts/ab" else "reinstall kmalloc-tools"
    out = []
    for w in workloads:
        prog = w.argv[0]
        if not (os.path.isfile(prog) and os.access(prog, os.X_OK)):
            out.append(f"workload {w.name}: {prog} not found ({how})")
        elif len(w.argv) > 1 and w.argv[1].endswith(".py") and not os.path.isfile(w.argv[1]):
            out.append(f"workload {w.name}: {w.argv[1]} not found")
    return out
