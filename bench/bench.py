# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""`make bench` (issue 10): the collection against raw runc and against podman's Ansible modules, in one run.

Sections (each writes its part of bench/results/<date>.json; the Markdown table and PNG come from it):
  ops      per operation, the core (imported like tests/functional/conftest.py) against the same runc
           commands run directly, same bundle, interleaved, medians of BENCH_REPS repetitions;
  converge N containers with ansible-playbook: first run and idempotent rerun of (a) a loop of
           oci.runtime.container tasks, (b) one oci.runtime.containers task, (c) a loop of
           containers.podman.podman_container, (d) a shell loop of raw `runc run -d` (the floor);
  noop     runtime binary invocations on an idempotent rerun, counted by a wrapper used as the runtime;
  memory   PSS (/proc/<pid>/smaps_rollup) of every shim with BENCH_MEMORY_N containers running, and of
           podman's conmon for the podman containers;
  fleet    playbooks/fleet.yml first run and rerun, when that playbook exists.

Run from the repository root with .venv-bench/bin/python after scripts/setup-bench.sh and
`scripts/run-tests.sh --sync-only` (the Makefile's `bench` target does all three). Everything it makes is
under build/bench/ with container ids starting with `bench` (podman: `benchp-`).
Environment: BENCH_REPS (ops repetitions, default 9), BENCH_NS (default "1,10,50,100"), BENCH_LOOP_MAX
(largest N for the two per-container loops, default 100), BENCH_PODMAN_MAX (default 100), BENCH_SECTIONS
(default all: "ops,converge,noop,memory,fleet"), BENCH_DATE (result file name).
"""

from __future__ import annotations

import datetime
import glob
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(ROOT, "build", "bench")
COLLECTIONS = os.path.join(ROOT, "build", "collections")
VENV_BENCH = os.path.join(ROOT, ".venv-bench")
RESULTS = os.path.join(ROOT, "bench", "results")
PLAYBOOKS = os.path.join(ROOT, "bench", "playbooks")
RUNTIME_ROOT = os.path.join(WORK, "runc-root")
IMAGE = "localhost/oci-bench-busybox:latest"
CRIU = "/usr/local/sbin/criu" if os.access("/usr/local/sbin/criu", os.X_OK) else shutil.which("criu")
RUNC = shutil.which("runc") or "/usr/sbin/runc"


def _env_int(name, default):
    return int(os.environ.get(name) or default)


REPS = _env_int("BENCH_REPS", 9)
NS = [int(n) for n in (os.environ.get("BENCH_NS") or "1,10,50,100").split(",")]
LOOP_MAX = _env_int("BENCH_LOOP_MAX", 100)
PODMAN_MAX = _env_int("BENCH_PODMAN_MAX", 100)
SECTIONS = (os.environ.get("BENCH_SECTIONS") or "ops,converge,noop,memory,fleet").split(",")

sys.path.insert(0, COLLECTIONS)
from ansible_collections.oci.runtime.plugins.module_utils._runtime import layout as L  # noqa: E402
from ansible_collections.oci.runtime.plugins.module_utils._runtime.checkpoint import CheckpointStore  # noqa: E402
from ansible_collections.oci.runtime.plugins.module_utils._runtime.container import Container  # noqa: E402
from ansible_collections.oci.runtime.plugins.module_utils._runtime.oci import OciRuntime  # noqa: E402
from ansible_collections.oci.runtime.plugins.module_utils._runtime.resources import update_document  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "tests", "utils"))
import make_busybox_bundle  # noqa: E402


def log(msg):
    sys.stderr.write("[bench %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def run(argv, check=True, **kwargs):
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.PIPE)
    proc = subprocess.run(argv, text=True, check=False, **kwargs)
    if check and proc.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(argv), proc.returncode,
                                                   (proc.stderr or proc.stdout or "").strip()[-2000:]))
    return proc


def runc(*args, check=True, root=RUNTIME_ROOT):
    return run([RUNC, "--root", root] + list(args), check=check, stdin=subprocess.DEVNULL)


SETTLE = 0.05  # seconds between two timed operations, so that one's background work (a new shim
# re-executing itself as the monitor) is not charged to the next


def timed(func, *args, **kwargs):
    time.sleep(SETTLE)
    start = time.perf_counter()
    func(*args, **kwargs)
    return time.perf_counter() - start


def median_ms(values):
    return round(statistics.median(values) * 1000, 2)


def process_gone(pid):
    """True when pid is gone or a zombie (PID 1 reaps orphans slowly here)."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            text = handle.read()
    except OSError:
        return True
    return text[text.rfind(")") + 2:].split()[0] in ("Z", "X")


def wait_until(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out waiting")
        time.sleep(0.002)


def cleanup_runc(root=RUNTIME_ROOT, prefix="bench"):
    """Delete our runc containers under ``root`` (their shims then exit by themselves)."""
    proc = runc("list", "--format", "json", check=False, root=root)
    for entry in json.loads(proc.stdout or "null") or []:
        if entry["id"].startswith(prefix):
            runc("delete", "--force", entry["id"], check=False, root=root)


def kill_shims(state_dir):
    for pid in host_pids(state_dir):  # each run starts from nothing, the host's start included
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    for path in glob.glob(os.path.join(state_dir, "*", "*", "shim.pid")):
        try:
            with open(path) as handle:
                pid = int(handle.read().split()[0])
            with open("/proc/%d/cmdline" % pid, "rb") as handle:
                if state_dir.encode() not in handle.read():
                    continue
            os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            pass


def reset_state(state_dir, root=RUNTIME_ROOT):
    cleanup_runc(root)
    time.sleep(0.2)
    kill_shims(state_dir)
    shutil.rmtree(state_dir, ignore_errors=True)


# --- 1. per operation: core vs raw runc --------------------------------------------------------------------

OPS = ["create+start", "pause", "resume", "update", "exec to exit", "checkpoint", "restore", "stop", "delete"]


def core_cycle(layout, runtime, bundle, cid, ckpt_dir, rep):
    times = {}
    container = Container.register(layout, runtime, cid, bundle)
    times["create+start"] = timed(lambda: (container.create(30), container.start()))
    times["pause"] = timed(container.pause)
    times["resume"] = timed(container.resume)
    limit = (64 + rep) * 1024 * 1024
    times["update"] = timed(lambda: container.runtime.update(cid, update_document({"memory": limit})))

    def exec_to_exit():
        record = container.exec_process("p%d" % rep, {"args": ["true"]}, {}, 30)
        if not record.wait_exit(30) or record.exit_status != 0:
            raise RuntimeError("exec did not exit 0")
    times["exec to exit"] = timed(exec_to_exit)
    store = CheckpointStore(ckpt_dir)
    times["checkpoint"] = timed(store.create, container, "c%d" % rep, {"exit": True}, CRIU)
    if not container.init.wait_exit(30):
        raise RuntimeError("checkpointed container did not exit")
    work = store.work_dir("c%d" % rep, "restore")
    L.make_private_dir(work)
    times["restore"] = timed(container.restore, "c%d" % rep, store.path("c%d" % rep), work, [], CRIU, 30)
    times["stop"] = timed(container.stop, "SIGKILL", 10)
    times["delete"] = timed(container.remove)
    store.remove("c%d" % rep)
    return times


def raw_cycle(bundle, cid, work_dir, rep):
    times = {}
    pid_file = os.path.join(work_dir, "%s.pid" % cid)
    with open(os.devnull, "r+b") as null:
        def create_start():
            subprocess.run([RUNC, "--root", RUNTIME_ROOT, "create", "--bundle", bundle, "--pid-file",
                            pid_file, cid], stdin=null, stdout=null, stderr=null, check=True)
            subprocess.run([RUNC, "--root", RUNTIME_ROOT, "start", cid], stdin=null, stdout=null,
                           stderr=null, check=True)
        times["create+start"] = timed(create_start)
        times["pause"] = timed(runc, "pause", cid)
        times["resume"] = timed(runc, "resume", cid)
        times["update"] = timed(runc, "update", "--memory", str((64 + rep) * 1024 * 1024), cid)
        times["exec to exit"] = timed(runc, "exec", cid, "true")
        images = os.path.join(work_dir, "%s-img" % cid)
        shutil.rmtree(images, ignore_errors=True)
        os.makedirs(images)
        times["checkpoint"] = timed(run, [RUNC, "--criu", CRIU, "--root", RUNTIME_ROOT, "checkpoint",
                                          "--image-path", images, "--work-path", images, cid])

        def restore():
            subprocess.run([RUNC, "--criu", CRIU, "--root", RUNTIME_ROOT, "restore", "--detach",
                            "--image-path", images, "--work-path", images, "--bundle", bundle,
                            "--pid-file", pid_file, cid], stdin=null, stdout=null, stderr=null, check=True)
        times["restore"] = timed(restore)
        with open(pid_file) as handle:
            pid = int(handle.read())

        def stop():
            runc("kill", cid, "KILL")
            wait_until(lambda: process_gone(pid))
        times["stop"] = timed(stop)
        times["delete"] = timed(runc, "delete", cid)
        shutil.rmtree(images, ignore_errors=True)
    return times


def bench_ops():
    work = os.path.join(WORK, "ops")
    state_dir = os.path.join(work, "state")
    reset_state(state_dir)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    bundle = os.path.join(WORK, "bundle")
    layout = L.Layout(state_dir)
    runtime = OciRuntime(RUNC, root=RUNTIME_ROOT)
    core, raw = {op: [] for op in OPS}, {op: [] for op in OPS}
    # One warm-up cycle each (page cache, CRIU), then interleaved repetitions so that noise hits both.
    for rep in range(REPS + 1):
        got_core = core_cycle(layout, runtime, bundle, "bench-op-core-%d" % rep, os.path.join(work, "ckpt"), rep)
        got_raw = raw_cycle(bundle, "bench-op-raw-%d" % rep, work, rep)
        if rep == 0:
            continue
        for op in OPS:
            core[op].append(got_core[op])
            raw[op].append(got_raw[op])
        log("ops rep %d/%d: create+start core %.1f ms raw %.1f ms" % (
            rep, REPS, got_core["create+start"] * 1000, got_raw["create+start"] * 1000))
    # `runc run -d` too: one exec where the core and raw create+start need two.
    run_d = []
    with open(os.devnull, "r+b") as null:
        for rep in range(REPS):
            cid = "bench-op-rund-%d" % rep
            run_d.append(timed(subprocess.run, [RUNC, "--root", RUNTIME_ROOT, "run", "-d", "--bundle", bundle,
                                                cid], stdin=null, stdout=null, stderr=null, check=True))
            runc("delete", "--force", cid)
    reset_state(state_dir)
    rows = []
    for op in OPS:
        c, r = median_ms(core[op]), median_ms(raw[op])
        rows.append({"op": op, "core_ms": c, "raw_ms": r, "ratio": round(c / r, 2) if r else None,
                     "core_runs_ms": [round(v * 1000, 1) for v in core[op]],
                     "raw_runs_ms": [round(v * 1000, 1) for v in raw[op]]})
    return {"repetitions": REPS, "rows": rows, "runc_run_d_ms": median_ms(run_d), "settle_s": SETTLE}


# --- 2. converging N containers ----------------------------------------------------------------------------

def write_inventory():
    path = os.path.join(WORK, "inventory.ini")
    with open(path, "w") as handle:
        handle.write("bench ansible_connection=local ansible_python_interpreter=%s\n"
                     % os.path.join(VENV_BENCH, "bin", "python"))
    return path


def ansible_env():
    env = dict(os.environ)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": COLLECTIONS,
        "ANSIBLE_PYTHON_INTERPRETER": os.path.join(VENV_BENCH, "bin", "python"),
        "CONTAINERS_CONF": os.path.join(WORK, "containers.conf"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default",
    })
    env.pop("ANSIBLE_CALLBACKS_ENABLED", None)
    env["PATH"] = os.path.join(VENV_BENCH, "bin") + os.pathsep + env.get("PATH", "")
    return env


def playbook_vars(n, prefix, bundle, state_dir, runtime):
    names = ["%s-%d" % (prefix, i) for i in range(1, n + 1)]
    return {"bench_names": names, "bench_items": [{"name": name, "bundle": bundle} for name in names],
            "bench_bundle": bundle, "bench_state_dir": state_dir, "bench_runtime": runtime,
            "bench_runtime_root": RUNTIME_ROOT, "bench_image": IMAGE}


def playbook(name, extra, inventory=None, playbook_path=None):
    """Wall seconds of one ansible-playbook run, and its recap counts (fails loudly on a failed run)."""
    argv = [os.path.join(VENV_BENCH, "bin", "ansible-playbook"), "-i", inventory or write_inventory(),
            playbook_path or os.path.join(PLAYBOOKS, name), "-e", json.dumps(extra)]
    start = time.perf_counter()
    proc = run(argv, check=False, env=ansible_env(), cwd=ROOT)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError("%s failed:\n%s" % (" ".join(argv), proc.stdout[-4000:] + proc.stderr[-2000:]))
    changed = sum(int(word.split("=")[1]) for line in proc.stdout.splitlines() if "changed=" in line
                  for word in line.split() if word.startswith("changed="))
    return round(seconds, 2), changed


def podman(*args, check=True):
    env = dict(os.environ, CONTAINERS_CONF=os.path.join(WORK, "containers.conf"))
    return run(["podman"] + list(args), check=check, env=env, stdin=subprocess.DEVNULL)


def podman_cleanup():
    ids = podman("ps", "-aq", "--filter", "name=^benchp-", check=False).stdout.split()
    if ids:
        podman("rm", "-f", "-t", "0", *ids, check=False)


def conmon_pss():
    """PSS and private KiB of the conmon of every running benchp- container."""
    out = podman("ps", "-q", "--filter", "name=^benchp-").stdout.split()
    values = []
    for cid in out:
        pid = podman("inspect", "--format", "{{.State.ConmonPid}}", cid).stdout.strip()
        values.append(smaps_rollup(int(pid)))
    return values


def smaps_rollup(pid):
    fields = {}
    with open("/proc/%d/smaps_rollup" % pid) as handle:
        for line in handle:
            parts = line.split()
            if len(parts) >= 3 and parts[1].isdigit():
                fields[parts[0].rstrip(":")] = int(parts[1])
    return {"pss_kib": fields.get("Pss", 0),
            "private_kib": fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)}


def shim_pids(state_dir):
    pids = []
    for path in glob.glob(os.path.join(state_dir, "*", "init", "shim.pid")):
        with open(path) as handle:
            pid = int(handle.read().split()[0])
        if not process_gone(pid):
            pids.append(pid)
    return pids


def host_pids(state_dir):
    """The shim host(s) of ``state_dir`` (``... --host=<state_dir> ...``): their memory is shared by
    the monitors they forked, so the table counts them too."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/cmdline" % name, "rb") as handle:
                    argv = handle.read().split(b"\0")
            except OSError:
                continue
            if ("--host=" + state_dir).encode() in argv:
                found.append(int(name))
    return found


def summarize_memory(samples):
    if not samples:
        return None
    pss = [s["pss_kib"] for s in samples]
    return {"count": len(samples), "pss_mib_mean": round(statistics.mean(pss) / 1024, 3),
            "pss_mib_median": round(statistics.median(pss) / 1024, 3),
            "private_mib_mean": round(statistics.mean(s["private_kib"] for s in samples) / 1024, 3),
            "pss_mib_total": round(sum(pss) / 1024, 2)}


def floor_loop(n, bundle, prefix):
    """Shell loop of raw `runc run -d` (the floor), then of `runc state` (the floor of a rerun)."""
    script = ('for i in $(seq 1 %d); do %s --root %s run -d --bundle %s %s-$i </dev/null >/dev/null 2>&1 '
              '|| exit 1; done' % (n, RUNC, RUNTIME_ROOT, bundle, prefix))
    first = timed(run, ["bash", "-c", script])
    script = ('for i in $(seq 1 %d); do %s --root %s state %s-$i >/dev/null || exit 1; done'
              % (n, RUNC, RUNTIME_ROOT, prefix))
    rerun = timed(run, ["bash", "-c", script])
    cleanup_runc(prefix=prefix)
    return round(first, 2), round(rerun, 2)


def bench_converge(memory_n):
    bundle = os.path.join(WORK, "bundle")
    results = []
    memory = {}
    variants = [("container loop", "container-loop.yml", "bench-loop", LOOP_MAX),
                ("containers module", "containers.yml", "bench-plural", max(NS)),
                ("podman_container loop", "podman.yml", "benchp-pod", PODMAN_MAX)]
    for n in NS:
        row = {"n": n}
        row["floor_first_s"], row["floor_rerun_s"] = floor_loop(n, bundle, "bench-floor-%d" % n)
        log("N=%d floor: %.2f s / rerun %.2f s" % (n, row["floor_first_s"], row["floor_rerun_s"]))
        for label, book, prefix, limit in variants:
            key = {"container loop": "loop", "containers module": "plural",
                   "podman_container loop": "podman"}[label]
            if n > limit:
                row[key + "_first_s"] = row[key + "_rerun_s"] = None
                row[key + "_note"] = "not run (capped at N=%d for the time budget)" % limit
                continue
            state_dir = os.path.join(WORK, "state-" + key)
            if key == "podman":
                podman_cleanup()
            else:
                reset_state(state_dir)
            extra = playbook_vars(n, prefix, bundle, state_dir, RUNC)
            first, changed_first = playbook(book, extra)
            rerun, changed_rerun = playbook(book, extra)
            row[key + "_first_s"], row[key + "_rerun_s"] = first, rerun
            row[key + "_rerun_changed"] = changed_rerun
            log("N=%d %s: first %.2f s, rerun %.2f s (changed=%d)" % (n, label, first, rerun, changed_rerun))
            if key == "plural" and n == memory_n:
                memory["shim"] = summarize_memory([smaps_rollup(p) for p in shim_pids(state_dir)])
                memory["shim_host"] = summarize_memory([smaps_rollup(p) for p in host_pids(state_dir)])
                memory["shim_n"] = n
            if key == "podman" and n == min(PODMAN_MAX, max(NS)):
                memory["conmon"] = summarize_memory(conmon_pss())
                memory["conmon_n"] = n
            if key == "podman":
                podman_cleanup()
            else:
                reset_state(state_dir)
        for key in ("loop", "plural", "podman"):
            for run_kind in ("first", "rerun"):
                value = row.get("%s_%s_s" % (key, run_kind))
                floor = row["floor_%s_s" % run_kind]
                pod = row.get("podman_%s_s" % run_kind)
                if value is not None:
                    row["%s_%s_vs_floor" % (key, run_kind)] = round(value / floor, 1) if floor else None
                    if pod and key != "podman":
                        row["%s_%s_vs_podman" % (key, run_kind)] = round(value / pod, 2)
        results.append(row)
    return results, memory


# --- 3. idempotent no-op: runtime invocations --------------------------------------------------------------

RUNTIME_VERBS = ("state", "list", "create", "start", "delete", "kill", "exec", "update", "pause", "resume", "run")


def bench_noop(n=20):
    wrapper = os.path.join(WORK, "runc-counting")
    calls = os.path.join(WORK, "runc-calls.log")
    with open(wrapper, "w") as handle:
        handle.write('#!/bin/sh\n# Counts runtime invocations for make bench (one line per call).\n'
                     'echo "$*" >>%s\nexec %s "$@"\n' % (calls, RUNC))
    os.chmod(wrapper, 0o755)
    bundle = os.path.join(WORK, "bundle")
    out = {"n": n}
    for key, book in (("plural", "containers.yml"), ("loop", "container-loop.yml")):
        state_dir = os.path.join(WORK, "state-noop-" + key)
        reset_state(state_dir)
        extra = playbook_vars(n, "bench-noop-" + key, bundle, state_dir, wrapper)
        open(calls, "w").close()
        playbook(book, extra)
        with open(calls) as handle:
            first_calls = sum(1 for line in handle if line.strip())
        open(calls, "w").close()
        rerun, changed = playbook(book, extra)
        with open(calls) as handle:
            lines = [line.split() for line in handle if line.strip()]
        verbs = {}
        for words in lines:
            verb = next((w for w in words if w in RUNTIME_VERBS), "?")
            verbs[verb] = verbs.get(verb, 0) + 1
        out[key] = {"rerun_s": rerun, "changed": changed, "runtime_calls": len(lines),
                    "calls_per_container": round(len(lines) / float(n), 2), "verbs": verbs,
                    "first_run_calls_per_container": round(first_calls / float(n), 2)}
        reset_state(state_dir)
        log("noop %s: %d calls for %d containers (%s), rerun %.2f s" % (key, len(lines), n, verbs, rerun))
    return out


# --- 5. fleet ----------------------------------------------------------------------------------------------

def _fleet_script_running():
    """Another fleet.sh run (the fleet's container ids are fixed: two runs would fight)."""
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != os.getpid():
            try:
                with open("/proc/%s/cmdline" % name, "rb") as handle:
                    if b"scripts/fleet.sh" in handle.read():
                        return True
            except OSError:
                pass
    return False


def bench_fleet():
    """scripts/fleet.sh (8 hosts x 10 containers, its three checked runs), then its --cleanup."""
    book = os.path.join(ROOT, "playbooks", "fleet.yml")
    script = os.path.join(ROOT, "scripts", "fleet.sh")
    if not (os.path.isfile(book) and os.path.isfile(script)):
        return {"status": "not yet available (playbooks/fleet.yml or scripts/fleet.sh does not exist)"}
    if _fleet_script_running():
        return {"status": "not measured: another scripts/fleet.sh run was in progress"}
    start = time.perf_counter()
    proc = run(["bash", script], check=False, cwd=ROOT)
    total = time.perf_counter() - start
    run(["bash", script, "--cleanup"], check=False, cwd=ROOT)
    times = {}
    for line in proc.stdout.splitlines():
        for key, label in (("first_s", "first converge"), ("rerun_s", "idempotent rerun"),
                           ("after_kill_s", "after kill -9")):
            if label in line:
                words = line.split(label, 1)[1].split()
                try:
                    times[key] = float(words[0])
                except (IndexError, ValueError):
                    pass
    if proc.returncode != 0 or "first_s" not in times:
        return {"status": "failed", "error": (proc.stdout + proc.stderr)[-1500:]}
    return dict(times, status="measured", script_s=round(total, 1),
                note="scripts/fleet.sh: 8 hosts x 10 containers, forks 10, 2 hosts over SSH")


# --- report ------------------------------------------------------------------------------------------------

def main():
    for tool in (RUNC, CRIU, os.path.join(VENV_BENCH, "bin", "ansible-playbook")):
        if not tool or not os.access(tool, os.X_OK):
            raise SystemExit("bench: %s is missing: run scripts/setup-bench.sh (make bench does)" % tool)
    os.makedirs(WORK, exist_ok=True)
    os.makedirs(RESULTS, exist_ok=True)
    make_busybox_bundle.build_bundle(os.path.join(WORK, "bundle"))
    date = os.environ.get("BENCH_DATE") or datetime.date.today().isoformat()
    result = {
        "date": date, "started": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "host": {"nproc": os.cpu_count(), "kernel": os.uname().release,
                 "runc": run([RUNC, "--version"]).stdout.splitlines()[0],
                 "python": sys.version.split()[0],
                 "loadavg_start": open("/proc/loadavg").read().split()[:3]},
    }
    started = time.monotonic()
    memory_n = max(NS)
    if "ops" in SECTIONS:
        log("section ops")
        result["ops"] = bench_ops()
    if "converge" in SECTIONS:
        log("section converge")
        result["converge"], result["memory"] = bench_converge(memory_n)
    if "noop" in SECTIONS:
        log("section noop")
        result["noop"] = bench_noop()
    if "fleet" in SECTIONS:
        log("section fleet")
        result["fleet"] = bench_fleet()
    result["host"]["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    result["seconds"] = round(time.monotonic() - started, 1)
    base = os.path.join(RESULTS, date)
    with open(base + ".json", "w") as handle:
        json.dump(result, handle, indent=2)
        handle.write("\n")
    import report  # noqa: E402  (bench/report.py: Markdown and PNG from the JSON)
    report.write_all(result, base)
    log("done in %.0f s: %s.{json,md,png}" % (result["seconds"], os.path.relpath(base, ROOT)))


if __name__ == "__main__":
    main()
