# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What attaching a container to a CNI network adds to its start (goal: at most 50 ms).

Interleaved repetitions, medians: the core's create + start of the same busybox container (a) with
no network (runc makes an empty network namespace) and (b) on one bridge network, and (c) with a
published port; for (b) and (c) the plugin chain is timed plugin by plugin (ADD on create, DEL on
removal, wall time and the CPU time of the plugins and the commands they run), and the namespace
creation on its own; (d) as (b) on a network without masquerading. Uses the real plugins (Debian's
containernetworking-plugins) and runc; a network in 10.249.x.0/24 that this host does not route,
removed at the end.

Run as root from the repository root: ``python3 bench/network_attach.py`` (BENCH_REPS, default 9;
BENCH_DATE names bench/results/<date>-network.{json,md}).
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "utils"))


def _import_core():
    root = tempfile.mkdtemp(prefix="oci-runtime-bench-net-")
    os.makedirs(os.path.join(root, "ansible_collections", "oci"))
    os.symlink(ROOT, os.path.join(root, "ansible_collections", "oci", "runtime"))
    sys.path.insert(0, root)
    return root


COLLECTIONS = _import_core()

from make_busybox_bundle import build_bundle  # noqa: E402
from ansible_collections.oci.runtime.plugins.module_utils._module.bundle import BundleConverger  # noqa: E402
from ansible_collections.oci.runtime.plugins.module_utils._module.network import NetworkConverger  # noqa: E402
from ansible_collections.oci.runtime.plugins.module_utils._runtime import cni as C  # noqa: E402
from ansible_collections.oci.runtime.plugins.module_utils._runtime import layout as L  # noqa: E402
from ansible_collections.oci.runtime.plugins.module_utils._runtime import netns as N  # noqa: E402
from ansible_collections.oci.runtime.plugins.module_utils._runtime.container import Container  # noqa: E402
from ansible_collections.oci.runtime.plugins.module_utils._runtime.oci import OciRuntime  # noqa: E402

TIMES = {}
_run = C.Plugins.run
_create = N.create


def _children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed_run(self, plugin, command, env, config):
    started, cpu = time.monotonic(), _children_cpu()
    try:
        return _run(self, plugin, command, env, config)
    finally:
        TIMES.setdefault("%s %s" % (command, plugin["type"]), []).append(time.monotonic() - started)
        TIMES.setdefault("cpu %s" % command, []).append(_children_cpu() - cpu)


def _timed_create(name):
    started = time.monotonic()
    try:
        return _create(name)
    finally:
        TIMES.setdefault("netns create", []).append(time.monotonic() - started)


C.Plugins.run = _timed_run
N.create = _timed_create


def free_subnet(skip=0):
    routed = [network for network, dummy in C.host_routes()]
    for third in range(skip, 256):
        subnet = ipaddress.ip_network("10.249.%d.0/24" % third)
        if not any(subnet.overlaps(r) for r in routed):
            return subnet
    raise SystemExit("no free 10.249.x.0/24")


def bundle(work, name, networks):
    path = os.path.join(work, name)
    params = dict.fromkeys(("rootfs_archive", "image", "image_ref", "env", "cwd", "user", "mounts",
                            "namespaces", "capabilities", "resources", "annotations", "spec",
                            "hostname"))
    params.update({"path": path, "state": "present",
                   "rootfs_dir": os.path.join(work, "busybox", "rootfs"), "allow_devices": False,
                   "readonly_rootfs": True, "args": ["sleep", "3600"], "networks": networks})
    BundleConverger(params).run()
    return path


def main():
    reps = int(os.environ.get("BENCH_REPS", "9"))
    date = os.environ.get("BENCH_DATE") or datetime.date.today().isoformat()
    work = tempfile.mkdtemp(prefix="bench-net-", dir="/tmp")
    layout = L.Layout(os.path.join(work, "state"))
    runtime = OciRuntime("runc", root=os.path.join(work, "runc"))
    network = "bench-net-%d" % os.getpid()
    quiet = "bench-nomasq-%d" % os.getpid()
    for index, (name, masquerade) in enumerate(((network, True), (quiet, False))):
        NetworkConverger({"name": name, "state": "present", "subnet": str(free_subnet(index)),
                          "bridge": "oci-b%s%d" % ("m" if masquerade else "q",
                                                   os.getpid() % 100000),
                          "ip_masquerade": masquerade,
                          "cni_config_dir": C.DEFAULT_CONFIG_DIR}).run()
    build_bundle(os.path.join(work, "busybox"))
    bundles = {
        "no network": bundle(work, "plain", None),
        "one network": bundle(work, "net", [network]),
        "one network, one port": bundle(work, "port", [{"name": network, "ports": [
            {"host_port": 18000 + os.getpid() % 1000, "container_port": 80,
             "host_ip": "127.0.0.1"}]}]),
        "one network without masquerading": bundle(work, "quiet", [quiet]),
    }
    starts = {kind: [] for kind in bundles}
    removes = {kind: [] for kind in bundles}
    chain = {kind: [] for kind in bundles}
    try:
        for rep in range(reps):
            for kind, path in bundles.items():
                container_id = "benchnet-%d-%d" % (rep, len(starts[kind]))
                TIMES.clear()
                container = Container.register(layout, runtime, container_id, path)
                started = time.monotonic()
                container.create(30)
                container.start()
                starts[kind].append(time.monotonic() - started)
                chain[kind].append({k: sum(v) for k, v in TIMES.items()})
                TIMES.clear()
                started = time.monotonic()
                container.stop("KILL", 10)
                container.remove()
                removes[kind].append(time.monotonic() - started)
                chain[kind][-1].update({k: sum(v) for k, v in TIMES.items()})
    finally:
        for name in (network, quiet):
            NetworkConverger({"name": name, "state": "absent", "force": True,
                              "cni_config_dir": C.DEFAULT_CONFIG_DIR}).run()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(COLLECTIONS, ignore_errors=True)

    def ms(values):
        return round(statistics.median(values) * 1000, 1) if values else None

    result = {"date": date, "reps": reps, "load": os.getloadavg(), "kinds": {}}
    for kind in bundles:
        steps = sorted(set(k for run in chain[kind] for k in run))
        result["kinds"][kind] = {
            "create_start_ms": ms(starts[kind]),
            "stop_remove_ms": ms(removes[kind]),
            "steps_ms": {step: ms([run.get(step, 0.0) for run in chain[kind]]) for step in steps},
            "add_chain_ms": ms([sum(v for k, v in run.items()
                                    if not k.startswith(("DEL", "cpu")))
                                for run in chain[kind]]),
            "add_chain_cpu_ms": ms([run.get("cpu ADD", 0.0) for run in chain[kind]]),
        }
    base = result["kinds"]["no network"]["create_start_ms"]
    title = "# Network attach cost (%s, %d reps, medians, load %.2f)" % (
        date, reps, result["load"][0])
    lines = [title,
             "", "| container | create+start ms | added ms | ADD chain ms | ADD chain CPU ms "
             "| stop+remove ms |", "|---|---|---|---|---|---|"]
    for kind, values in result["kinds"].items():
        lines.append("| %s | %s | %s | %s | %s | %s |" % (
            kind, values["create_start_ms"], round(values["create_start_ms"] - base, 1),
            values["add_chain_ms"], values["add_chain_cpu_ms"], values["stop_remove_ms"]))
    lines += ["", "Per step (medians, ms):", ""]
    for kind, values in result["kinds"].items():
        if values["steps_ms"]:
            steps = ", ".join("%s %s" % item for item in values["steps_ms"].items())
            lines.append("- %s: %s" % (kind, steps))
    text = "\n".join(lines) + "\n"
    out = os.path.join(ROOT, "bench", "results", date + "-network")
    with open(out + ".json", "w") as handle:
        json.dump(result, handle, indent=2)
    with open(out + ".md", "w") as handle:
        handle.write(text)
    print(text)


if __name__ == "__main__":
    main()
