# python_dicts.py — built-in workload 4 of scripts/ab: a real Debian program, /usr/bin/python3.
#
# scripts/ab runs it with PYTHONMALLOC=malloc, so every object goes through the allocator under test
# (by default CPython serves objects up to 512 bytes from its own pymalloc arenas and the allocator only
# sees the large ones).
#
# Fragmentation it provokes: a cache of records (dicts of short strings and ints) is built, then 90%
# of the records are dropped at random, leaving survivors on nearly every page. The program then builds
# longer strings and lists (other size classes) and a new index dict, whose table grows by doubling;
# the survivors pin the old pages while the new data needs fresh ones. A second round replaces the
# strings with dicts again, as a long-running service's mix of work changes.
import os
import random
import sys
import time

scale = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
rng = random.Random(4)
N = int(200_000 * scale)

# Round 1: a cache of records.
cache = {}
for i in range(N):
    key = f"user:{i:08d}"
    cache[key] = {"id": i, "name": "n" * rng.randint(8, 40), "email": f"{i}@example.org",
                  "tags": [f"t{j}" for j in range(rng.randint(1, 4))], "score": rng.random()}

# 90% of the records go away, at random.
for key in [k for k in cache if rng.random() < 0.9]:
    del cache[key]

# New work of other sizes: long strings and lists of them, and an index over them.
documents = []
index = {}
for i in range(N // 3):
    text = " ".join(rng.choice(("alpha", "beta", "gamma", "delta", "epsilon")) * rng.randint(2, 12)
                    for _ in range(rng.randint(4, 24)))
    documents.append(text)
    index[text[:32] + str(i)] = i

# Round 2: the documents age out and records come back, in a different mix.
for i in range(0, len(documents), 2):
    documents[i] = None
for i in range(N // 2):
    cache[f"session:{i}"] = {"i": i, "payload": "p" * rng.randint(60, 400)}

print(f"python_dicts: {len(cache)} records, {sum(d is not None for d in documents)} documents")
sys.stdout.flush()
time.sleep(0.4)  # the quiet phase: hold the final live set while idle
# Leave without the interpreter's teardown, which frees every object: "RSS at the end" and "live at
# the end" then describe the program's final state, as for the C++ workloads (which exit in place).
os._exit(0)
