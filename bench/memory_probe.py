# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shim memory by Python version (issue 10): start N containers through the core with the Python that
runs this script, print the mean PSS of their shims and of the shim host, then remove them.

`<python> bench/memory_probe.py [N]` from the repository root, after `scripts/run-tests.sh --sync-only`
(the core is standard library only, so any Python 3.8+ runs it; the shims and their host run with the
same Python). Containers: bench-mem-*, state and runc root under build/bench/memory-probe/.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "build", "collections"))
from ansible_collections.oci.runtime.plugins.module_utils._runtime import layout as L  # noqa: E402
from ansible_collections.oci.runtime.plugins.module_utils._runtime.container import Container  # noqa: E402
from ansible_collections.oci.runtime.plugins.module_utils._runtime.oci import OciRuntime  # noqa: E402


def pss_mib(pid):
    with open("/proc/%d/smaps_rollup" % pid) as handle:
        for line in handle:
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    tool_path = os.path.join(ROOT, "tests", "utils", "make_busybox_bundle.py")
    spec = importlib.util.spec_from_file_location("bundle_tool", tool_path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    base = os.path.join(ROOT, "build", "bench", "memory-probe")
    shutil.rmtree(base, ignore_errors=True)
    os.makedirs(base)
    layout = L.Layout(os.path.join(base, "state"))
    runtime = OciRuntime(shutil.which("runc") or "/usr/sbin/runc", root=os.path.join(base, "runc"))
    bundle = os.path.join(base, "bundle")
    tool.build_bundle(bundle)
    containers = []
    try:
        for index in range(count):
            container = Container.register(layout, runtime, "bench-mem-%d" % index, bundle)
            container.create(30)
            container.start()
            containers.append(container)
        time.sleep(1)  # let every monitor settle into its loop
        shims = [pss_mib(c.describe()["shim_pid"]) for c in containers]
        hosts = [int(line.split()[0]) for line in subprocess.run(
            ["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=True).stdout.splitlines()
            if "--host=" + layout.state_dir + " " in line + " "]
        host_total = sum(pss_mib(pid) for pid in hosts)
        print("Python %s (%s): %d shims, PSS mean %.2f MiB (min %.2f, max %.2f); %d host(s) %.2f MiB; "
              "per container with the host's share %.2f MiB"
              % (sys.version.split()[0], sys.executable, len(shims), sum(shims) / len(shims), min(shims),
                 max(shims), len(hosts), host_total, (sum(shims) + host_total) / len(shims)))
    finally:
        for container in containers:
            container.stop("KILL", 5)
            container.remove()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
