# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Images from a registry to ten running containers: oci.runtime's store and overlay bundles, and
podman beside it when it is installed. Not a test: it prints (and writes) numbers.

The image is built here from host files (nothing large is committed): a busybox layer plus gzip
layers of /usr/lib/python3 and /usr/share/doc (about 170 MB and 9,000 files on Debian 12), pushed
to Debian's docker-registry on 127.0.0.1. Then, timed:

- oci.runtime (the module logic, without Ansible's start-up): pull (ImageConverger), ten bundles
  (BundleConverger), ten running containers (ContainerConverger), and the idempotent rerun of all
  of it; disk is ``du -x`` of the store and the ten bundles with the containers running.
- podman (if on PATH; runc and lowered ulimits as docs/ENVIRONMENT.md says, its own --root):
  ``pull`` then ten ``run -d``; disk is ``du -x`` of its root.

Usage (as root): python3 bench/images.py [--count N] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "utils"))
import collection_path  # noqa: E402  pylint: disable=wrong-import-position
import oci_images as O  # noqa: E402  pylint: disable=wrong-import-position

COLLECTIONS = collection_path.collections_root(REPO)
sys.path.insert(0, COLLECTIONS)
# pylint: disable=wrong-import-position
from ansible_collections.oci.runtime.plugins.module_utils._module import bundle as B  # noqa: E402
from ansible_collections.oci.runtime.plugins.module_utils._module.container import ContainerConverger  # noqa: E402
from ansible_collections.oci.runtime.plugins.module_utils._module.image import ImageConverger  # noqa: E402

PODMAN_CONF = '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n[engine]\nruntime = "runc"\n'


def du(*paths):
    """Bytes on disk under ``paths``, one file system each (du -x), hard links counted once."""
    out = subprocess.run(["du", "-x", "-s", "-c", "--block-size=1"] + list(paths),
                         stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout
    return int(out.strip().splitlines()[-1].split()[0])


def build_image(work):
    layout = os.path.join(work, "layout")
    layers = [O.busybox_layer(os.path.join(work, "busybox.tar")),
              O.dir_layer(os.path.join(work, "python3.tar"), "/usr/lib/python3", "usr/lib/python3"),
              O.dir_layer(os.path.join(work, "doc.tar"), "/usr/share/doc", "usr/share/doc")]
    digest = O.make_layout(layout, layers, "1")
    files = sum(len(d) + len(f) for p in ("/usr/lib/python3", "/usr/share/doc")
                for _r, d, f in os.walk(p))
    size = sum(os.path.getsize(p) for p in layers)
    for path in layers:
        os.unlink(path)
    return layout, digest, files, size


def timed(func):
    start = time.monotonic()
    func()
    return time.monotonic() - start


def ours(work, name, count):
    store = os.path.join(work, "store")
    state = os.path.join(work, "state")
    runc_root = os.path.join(work, "runc-root")
    bundles = [os.path.join(work, "bundles", "b%d" % i) for i in range(count)]
    image = dict(name=name, state="present", pull="missing", source=None, tls_verify=False,
                 auth_file=None, username=None, password=None, force=False, image_store=store)
    bundle_defaults = {k: v.get("default") for k, v in B.BUNDLE_MODULE_OPTIONS.items()}

    def bundle_params(path, state_="present"):
        return dict(bundle_defaults, path=path, image=name, image_store=store, args=["sleep", "3600"],
                    state=state_)

    def container_params(index, state_="running"):
        return {"name": "bench-img-%d" % index, "bundle": bundles[index], "state": state_,
                "state_dir": state, "runtime": "runc", "runtime_root": runc_root, "runtime_args": [],
                "labels": None, "stdin": None, "stdout": None, "stderr": None,
                "no_pivot_root": False, "start_timeout": 30.0, "stop_timeout": 1.0,
                "stop_signal": "SIGKILL", "force_recreate": False, "image_store": store}

    bundle_times = []

    def build_all():
        for path in bundles:
            start = time.monotonic()
            B.BundleConverger(bundle_params(path)).run()
            bundle_times.append(time.monotonic() - start)

    def run_all():
        for index in range(count):
            ContainerConverger(container_params(index)).run()

    def rerun():
        assert not ImageConverger(dict(image)).run()["changed"]
        for path in bundles:
            assert not B.BundleConverger(bundle_params(path)).run()["changed"]
        for index in range(count):
            assert not ContainerConverger(container_params(index)).run()["changed"]

    result = {"pull": timed(lambda: ImageConverger(dict(image)).run())}
    result["bundles"] = timed(build_all)
    result["bundle_median"] = sorted(bundle_times)[len(bundle_times) // 2]
    result["containers"] = timed(run_all)
    result["total"] = result["pull"] + result["bundles"] + result["containers"]
    result["disk"] = du(store, os.path.join(work, "bundles"))
    result["image_unpacked"] = du(os.path.join(store, "layers"))
    result["rerun"] = timed(rerun)
    for index in range(count):
        ContainerConverger(container_params(index, "absent")).run()
    for path in bundles:
        B.BundleConverger(bundle_params(path, "absent")).run()
    ImageConverger(dict(image, state="absent")).run()
    return result


def ansible_side(work, name, count, collections):
    """Wall seconds of ansible-playbook bench/playbooks/images.yml (image + containers with builds,
    one task each), its rerun, and of a playbook that does nothing (Ansible's start-up)."""
    inventory = os.path.join(work, "inventory.ini")
    with open(inventory, "w") as handle:
        handle.write("bench ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable)
    store = os.path.join(work, "ansible-store")
    extra = {"bench_store": store, "bench_state_dir": os.path.join(work, "ansible-state"),
             "bench_runtime_root": os.path.join(work, "ansible-runc"), "bench_image": name,
             "bench_items": [{"name": "bench-ans-%d" % i, "bundle": os.path.join(work, "ansible-b%d" % i),
                              "build": {"image": name, "args": ["sleep", "3600"]}}
                             for i in range(count)]}
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections, ANSIBLE_NOCOLOR="1",
               ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    binary = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")

    def play(name_, variables):
        argv = [binary, "-i", inventory, os.path.join(REPO, "bench", "playbooks", name_), "-e",
                json.dumps(variables)]
        start = time.monotonic()
        proc = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError("%s failed:\n%s" % (name_, proc.stdout[-3000:]))
        return time.monotonic() - start

    result = {"startup": play("noop.yml", {}), "first": play("images.yml", extra)}
    result["rerun"] = play("images.yml", extra)
    extra["bench_items"] = [dict(item, state="absent") for item in extra["bench_items"]]
    play("images.yml", extra)
    for item in extra["bench_items"]:
        B.BundleConverger(dict({k: v.get("default") for k, v in B.BUNDLE_MODULE_OPTIONS.items()},
                               path=item["bundle"], state="absent")).run()
    return result


def podman(work, name, count):
    if shutil.which("podman") is None:
        return None
    conf = os.path.join(work, "containers.conf")
    with open(conf, "w") as handle:
        handle.write(PODMAN_CONF)
    root = os.path.join(work, "podman-root")
    runroot = tempfile.mkdtemp(prefix="ocib-", dir="/run")  # podman takes at most 50 characters
    env = dict(os.environ, CONTAINERS_CONF=conf)
    base = ["podman", "--root", root, "--runroot", runroot, "--storage-driver", "overlay",
            "--cgroup-manager", "cgroupfs", "--events-backend", "none"]

    def run(*args):
        proc = subprocess.run(base + list(args), env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, universal_newlines=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError("podman %s failed: %s" % (args[0], proc.stderr.strip()[-500:]))

    result = {"pull": timed(lambda: run("pull", "--quiet", "--tls-verify=false", name))}
    result["containers"] = timed(lambda: [run("run", "-d", "--name", "bench-pod-%d" % i,
                                              "--network", "none", name, "sleep", "3600")
                                          for i in range(count)])
    result["total"] = result["pull"] + result["containers"]
    result["disk"] = du(root)
    subprocess.run(base + ["rm", "-f", "-t", "0", "-a"], env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False)
    subprocess.run(base + ["rmi", "-a", "-f"], env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False)
    subprocess.run(["umount", "-R", runroot], stderr=subprocess.DEVNULL, check=False)
    shutil.rmtree(runroot, ignore_errors=True)
    return result


def table(image, mine, theirs, count):
    mib = 1 << 20
    lines = ["image: %.0f MiB uncompressed, %d files of host directories, 3 layers" % (
        image["size"] / mib, image["files"]),
        "",
        "| | pull | %d bundles | %d running containers | total | disk (du -x) | rerun |" % (count, count),
        "|---|---|---|---|---|---|---|",
        "| oci.runtime | %.2f s | %.2f s (median %.3f s) | %.2f s | %.2f s | %.0f MiB (%.2f× the unpacked image) | %.2f s |" % (
            mine["pull"], mine["bundles"], mine["bundle_median"], mine["containers"], mine["total"],
            mine["disk"] / mib, mine["disk"] / float(mine["image_unpacked"]), mine["rerun"])]
    if mine.get("ansible"):
        run = mine["ansible"]
        lines.append("| oci.runtime with ansible-playbook (image + containers with builds) | | | | "
                     "%.2f s (start-up %.2f s) | | %.2f s |"
                     % (run["first"], run["startup"], run["rerun"]))
    if theirs:
        lines.append("| podman | %.2f s | — | %.2f s (run -d) | %.2f s | %.0f MiB | — |" % (
            theirs["pull"], theirs["containers"], theirs["total"], theirs["disk"] / mib))
    else:
        lines.append("| podman | not installed | | | | | |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("run as root (overlay mounts, runc)")
    work = tempfile.mkdtemp(prefix="oci-runtime-bench-images-", dir="/var/tmp")
    registry = None
    try:
        layout, digest, files, size = build_image(work)
        registry = O.Registry(os.path.join(work, "registry")).start()
        name = registry.host + "/bench/pyimage:1"
        O.push(layout, "1", name)
        shutil.rmtree(layout)
        image = {"digest": digest, "files": files, "size": size}
        mine = ours(work, name, args.count)
        print(json.dumps(mine))
        if shutil.which(os.path.join(os.path.dirname(sys.executable), "ansible-playbook")):
            mine["ansible"] = ansible_side(work, name, args.count, COLLECTIONS)
            print(json.dumps(mine["ansible"]))
        try:
            theirs = podman(work, name, args.count)
        except RuntimeError as exc:
            print(exc)
            theirs = None
        result = {"image": image, "count": args.count, "oci_runtime": mine, "podman": theirs,
                  "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
        print(table(image, mine, theirs, args.count))
        if args.json:
            with open(args.json, "w") as handle:
                json.dump(result, handle, indent=2, sort_keys=True)
    finally:
        if registry is not None:
            registry.stop()
        subprocess.run(["umount", "-R", work], stderr=subprocess.DEVNULL, check=False)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
