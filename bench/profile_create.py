# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where the core's create+start spends its time, against raw runc (issue 10's profiling step).

`.venv-bench/bin/python bench/profile_create.py [REPS]` (after `scripts/run-tests.sh --sync-only`):
prints medians of the pieces (interpreter start of the shim, runc create/start/state, the core's
create and start) and a cProfile of the core's create+start, cumulative, top 25 entries. Its output
goes to build/bench/profile-create.txt too. Containers: bench-prof-*, under build/bench/runc-root.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (its import sets up the collection path)
from bench import L, WORK, RUNC, RUNTIME_ROOT, Container, OciRuntime, reset_state, runc  # noqa: E402


def med(values):
    return "%.1f ms" % (statistics.median(values) * 1000)


def main():
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 9
    bundle = os.path.join(WORK, "bundle")
    bench.make_busybox_bundle.build_bundle(bundle)
    state = os.path.join(WORK, "state-profile")
    reset_state(state)
    layout = L.Layout(state)
    runtime = OciRuntime(RUNC, root=RUNTIME_ROOT)
    pieces = {k: [] for k in ("python -I -S -c pass", "shim imports (_json, ctypes, select)",
                              "runc create", "runc start", "runc state", "core create (shim + runc create)",
                              "core start", "core describe after start", "core create+start")}
    null = open(os.devnull, "r+b")
    for rep in range(reps):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-I", "-S", "-c", "pass"], check=True)
        pieces["python -I -S -c pass"].append(time.perf_counter() - t)
        t = time.perf_counter()
        subprocess.run([sys.executable, "-I", "-S", "-c", "import _json, ctypes, select, _signal; "
                        "ctypes.CDLL(None)"], check=True)
        pieces["shim imports (_json, ctypes, select)"].append(time.perf_counter() - t)
        cid = "bench-prof-raw-%d" % rep
        t = time.perf_counter()
        subprocess.run([RUNC, "--root", RUNTIME_ROOT, "create", "--bundle", bundle, cid], stdin=null,
                       stdout=null, stderr=null, check=True)
        pieces["runc create"].append(time.perf_counter() - t)
        t = time.perf_counter()
        runc("start", cid)
        pieces["runc start"].append(time.perf_counter() - t)
        t = time.perf_counter()
        runc("state", cid)
        pieces["runc state"].append(time.perf_counter() - t)
        runc("delete", "--force", cid)
        container = Container.register(layout, runtime, "bench-prof-core-%d" % rep, bundle)
        t0 = time.perf_counter()
        container.create(30)
        t1 = time.perf_counter()
        container.start()
        t2 = time.perf_counter()
        container.describe()
        t3 = time.perf_counter()
        pieces["core create (shim + runc create)"].append(t1 - t0)
        pieces["core start"].append(t2 - t1)
        pieces["core create+start"].append(t2 - t0)
        pieces["core describe after start"].append(t3 - t2)
        container.stop("SIGKILL", 10)
        container.remove()
    out = io.StringIO()
    out.write("medians of %d (load average %s)\n" % (reps, open("/proc/loadavg").read().split()[:3]))
    for key, values in pieces.items():
        out.write("  %-40s %s\n" % (key, med(values)))
    profiler = cProfile.Profile()
    for rep in range(reps):
        container = Container.register(layout, runtime, "bench-prof-cp-%d" % rep, bundle)
        profiler.enable()
        container.create(30)
        container.start()
        profiler.disable()
        container.stop("SIGKILL", 10)
        container.remove()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(25)
    stats.sort_stats("tottime").print_stats(12)
    reset_state(state)
    text = out.getvalue()
    with open(os.path.join(WORK, "profile-create.txt"), "w") as handle:
        handle.write(text)
    print(text)


if __name__ == "__main__":
    main()
