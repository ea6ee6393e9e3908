"""Counts the test cases of a meson test run: GoogleTest binaries report their own cases, any other
test counts as one; several testlog.json files add up. A skipped case (GTEST_SKIP, or a meson test
that exits 77) is counted apart, never as passed. Prints 'kmalloc tests: N passed, N failed, N skipped'
and exits non-zero on a failure."""
import json
import re
import sys

passed = failed = skipped = 0
lines = [line for path in sys.argv[1:] for line in open(path, encoding="utf-8", errors="replace")]
for line in lines:
    t = json.loads(line)
    out = t.get("stdout") or ""
    result = t.get("result")
    ok = result in ("OK", "EXPECTEDFAIL", "SKIP")
    p = re.findall(r"^\[  PASSED  \] (\d+) tests?\.", out, re.M)
    f = re.findall(r"^\[  FAILED  \] (\d+) tests?, listed below", out, re.M)
    s = re.findall(r"^\[  SKIPPED \] (\d+) tests?, listed below", out, re.M)
    if p or f or s:
        passed += sum(map(int, p))   # gtest's PASSED count leaves skipped cases out
        failed += sum(map(int, f))
        skipped += sum(map(int, s))
        if not ok and not f:
            failed += 1   # crashed or timed out before gtest could report
    elif result == "SKIP":
        skipped += 1
    elif ok:
        passed += 1
    else:
        failed += 1
print(f"kmalloc tests: {passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
