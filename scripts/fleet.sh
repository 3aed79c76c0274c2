#!/usr/bin/env bash
# The fleet example (playbooks/fleet.yml, docs/fleet.md): eight inventory hosts on this machine, two
# of them over real SSH to an sshd on loopback, ten containers each, converged with forks 10.
#
#   scripts/fleet.sh              prepare, then run the playbook three times and check each run:
#                                   1. first converge: every container is created (every host changed)
#                                   2. second run: changed=0 on every host, no container changed
#                                   3. after `kill -9` of the init of 3 containers on 2 hosts (one over
#                                      SSH): exactly those 3 are started again, nothing else changes
#                                 and print the wall time of each run. The containers stay (look at them
#                                 with runc --root build/fleet/hosts/<host>/runc list); leftovers of an
#                                 earlier run are removed first.
#   scripts/fleet.sh --cleanup    remove every fleet container (the playbook with 0 containers per
#                                 host: the module prunes them), check that none is left, stop the sshd
#   scripts/fleet.sh --bench50    50 containers on one host: a loop of oci.runtime.container tasks
#                                 versus one oci.runtime.containers task (first run, rerun, removal)
#   scripts/fleet.sh --sshd-start | --sshd-stop     only start (idempotent) or stop the sshd
#
# Everything lives under build/fleet/: the busybox root filesystem, one directory per host (state dir,
# runc root, bundle), the sshd's config, host key, the controller's key pair, known_hosts, log and pid
# file, the playbook logs and reports. The sshd listens on 127.0.0.1 and 127.0.0.2, port
# $FLEET_SSH_PORT (default 2222), and lets in root with the generated key only. There is no systemd
# here: this script starts /usr/sbin/sshd itself and stops it by the pid in its own pid file.
# Needs root, runc, sshd (openssh-server) and the venv: run `make setup` first.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
FLEET="$ROOT/build/fleet"
SSH_DIR="$FLEET/ssh"
LOGS="$FLEET/logs"
PORT="${FLEET_SSH_PORT:-2222}"
SSH_ADDRS=(127.0.0.1 127.0.0.2)
INVENTORY="$ROOT/playbooks/fleet/inventory.yml"
PLAYBOOK="$ROOT/playbooks/fleet.yml"
FORKS=10
PER_HOST=10
HOSTS=(fleet-s1 fleet-s2 fleet-l1 fleet-l2 fleet-l3 fleet-l4 fleet-l5 fleet-l6)
# Killed by hand in run 3: two on a local host, one on a host reached over SSH.
KILL=(fleet-l2-03 fleet-l2-07 fleet-s1-05)

export ANSIBLE_COLLECTIONS_PATH="$ROOT/build/collections"
export ANSIBLE_NOCOLOR=1 NO_COLOR=1 PYTHONDONTWRITEBYTECODE=1
export ANSIBLE_RETRY_FILES_ENABLED=0

log() { printf 'fleet: %s\n' "$*"; }
die() { printf 'fleet: ERROR: %s\n' "$*" >&2; exit 1; }

preflight() {
    [ "$(id -u)" -eq 0 ] || die "the fleet runs real containers: run as root"
    [ -x "$VENV/bin/ansible-playbook" ] || die "$VENV is missing or incomplete: run 'make setup' first"
    command -v runc >/dev/null || die "runc is missing: run 'make setup' first"
    [ -x /usr/sbin/sshd ] || die "/usr/sbin/sshd is missing (package openssh-server): run 'make setup' first"
    if ! command -v ssh >/dev/null || ! command -v ssh-keygen >/dev/null; then
        die "ssh/ssh-keygen are missing (package openssh-client): run 'make setup' first"
    fi
    mkdir -p "$LOGS"
}

# --- sshd on loopback -------------------------------------------------------------------------------
ssh_opts=(-i "$SSH_DIR/id_ed25519" -p "$PORT" -o BatchMode=yes -o IdentitiesOnly=yes
          -o UserKnownHostsFile="$SSH_DIR/known_hosts" -o GlobalKnownHostsFile=/dev/null
          -o StrictHostKeyChecking=yes -o ConnectTimeout=3 -o ControlMaster=no -o ControlPath=none)

sshd_pid() {  # the pid of our sshd, if it runs (by our pid file, and its cmdline names our config)
    local pid
    pid=$(cat "$SSH_DIR/sshd.pid" 2>/dev/null) || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$SSH_DIR/sshd_config" || return 1
    echo "$pid"
}

sshd_start() {
    mkdir -p "$SSH_DIR/cp"
    chmod 700 "$SSH_DIR" "$SSH_DIR/cp"
    [ -f "$SSH_DIR/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C fleet-controller -f "$SSH_DIR/id_ed25519"
    [ -f "$SSH_DIR/ssh_host_ed25519_key" ] \
        || ssh-keygen -q -t ed25519 -N '' -C fleet-sshd -f "$SSH_DIR/ssh_host_ed25519_key"
    # Only from loopback, and no forwarding of any kind: the key is for this example alone.
    printf 'from="127.0.0.0/8",restrict %s\n' "$(cat "$SSH_DIR/id_ed25519.pub")" >"$SSH_DIR/authorized_keys"
    local addr host_key
    host_key=$(cut -d' ' -f1,2 "$SSH_DIR/ssh_host_ed25519_key.pub")
    : >"$SSH_DIR/known_hosts"
    for addr in "${SSH_ADDRS[@]}"; do
        printf '[%s]:%s %s\n' "$addr" "$PORT" "$host_key" >>"$SSH_DIR/known_hosts"
    done
    {
        for addr in "${SSH_ADDRS[@]}"; do printf 'ListenAddress %s:%s\n' "$addr" "$PORT"; done
        cat <<EOF
HostKey $SSH_DIR/ssh_host_ed25519_key
PidFile $SSH_DIR/sshd.pid
AuthorizedKeysFile $SSH_DIR/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
# The checkout may live under a world-writable dir such as /tmp (CI's clean clone does), which sshd's
# strict mode refuses on the way to authorized_keys; the key file itself is ours, 0600, root's.
StrictModes no
UsePAM no
X11Forwarding no
PrintMotd no
MaxStartups 30:30:60
MaxSessions 30
Subsystem sftp internal-sftp
EOF
    } >"$SSH_DIR/sshd_config"
    local pid
    if pid=$(sshd_pid); then
        log "sshd already runs (pid $pid, port $PORT)"
    else
        mkdir -p /run/sshd  # sshd's privilege separation directory (systemd would make it)
        /usr/sbin/sshd -t -f "$SSH_DIR/sshd_config" || die "sshd refuses its config $SSH_DIR/sshd_config"
        rm -f "$SSH_DIR/sshd.pid"
        : >"$SSH_DIR/sshd.log"
        /usr/sbin/sshd -f "$SSH_DIR/sshd_config" -E "$SSH_DIR/sshd.log" \
            || die "sshd did not start: $(tail -5 "$SSH_DIR/sshd.log")"
        # sshd may exit 0 and yet not run (it daemonizes before it finds it cannot bind): wait for it.
        for _ in $(seq 30); do sshd_pid >/dev/null && break; sleep 0.1; done
        sshd_pid >/dev/null || die "sshd did not start (port $PORT taken?): $(tail -5 "$SSH_DIR/sshd.log")"
    fi
    # Started is not enough: log in on every address, as Ansible will.
    local tries
    for addr in "${SSH_ADDRS[@]}"; do
        for tries in $(seq 50); do
            ssh "${ssh_opts[@]}" "root@$addr" true 2>"$SSH_DIR/probe.err" && break
            [ "$tries" -lt 50 ] || die "cannot log in to root@$addr:$PORT over SSH: $(cat "$SSH_DIR/probe.err");" \
                "sshd log: $(tail -5 "$SSH_DIR/sshd.log" 2>/dev/null)"
            sleep 0.1
        done
    done
    log "sshd runs (pid $(sshd_pid)) on ${SSH_ADDRS[*]} port $PORT; root logs in with $SSH_DIR/id_ed25519"
}

sshd_stop() {
    local sock pid
    # Ansible's connection masters (ControlPersist) would otherwise linger after the sshd is gone.
    for sock in "$SSH_DIR"/cp/*; do
        if [ -S "$sock" ]; then ssh -o ControlPath="$sock" -O exit fleet 2>/dev/null || true; fi
    done
    if pid=$(sshd_pid); then
        kill "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && die "sshd (pid $pid) did not stop on SIGTERM"
        log "sshd (pid $pid) stopped"
    else
        log "sshd does not run"
    fi
    rm -f "$SSH_DIR/sshd.pid"
}

# --- playbook runs and their checks ----------------------------------------------------------------
prepare() {
    bash "$ROOT/scripts/run-tests.sh" --sync-only >/dev/null  # the collection copy the playbook uses
    log "busybox root filesystem: $("$PY" "$ROOT/tests/utils/make_busybox_bundle.py" "$FLEET/busybox")"
    sshd_start
}

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

WALL=""
run_fleet() {  # run_fleet NAME [ansible-playbook args...]: run the playbook, log to $LOGS/NAME.log
    local name=$1 start
    shift
    rm -f "$LOGS/$name.json"
    start=$(now)
    if ! "$VENV/bin/ansible-playbook" -i "$INVENTORY" --forks "$FORKS" "$PLAYBOOK" \
            -e fleet_report="$LOGS/$name.json" "$@" >"$LOGS/$name.log" 2>&1; then
        tail -n 40 "$LOGS/$name.log" >&2
        die "run '$name' failed (whole log: $LOGS/$name.log)"
    fi
    WALL=$(secs "$start" "$(now)")
}

# The checks read three things: the play recap (per-host changed counts), the report the playbook
# wrote (each container's module result) and runc itself (status and init pid of every container).
read -r -d '' CHECK_PY <<'PYEOF' || true
import json, os, re, subprocess, sys

fleet, mode, name = sys.argv[1], sys.argv[2], sys.argv[3]
hosts, per_host, killed = sys.argv[4].split(), int(sys.argv[5]), set(sys.argv[6].split())
logs = os.path.join(fleet, "logs")
problems = []

def world():
    """{container: (status, pid)} of every fleet host, from `runc --root <host's root> list`."""
    seen = {}
    for host in hosts:
        root = os.path.join(fleet, "hosts", host, "runc")
        out = subprocess.run(["runc", "--root", root, "list", "--format", "json"],
                             capture_output=True, text=True).stdout.strip()
        for c in json.loads(out or "null") or []:
            seen[c["id"]] = (c["status"], c["pid"])
    return seen

if mode == "snapshot":
    json.dump(world(), open(os.path.join(logs, name), "w"))
    sys.exit(0)

recap = {}
for line in open(os.path.join(logs, name + ".log")):
    m = re.match(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", line)
    if m:
        recap[m.group(1)] = {"changed": int(m.group(3)), "unreachable": int(m.group(4)),
                             "failed": int(m.group(5))}
report = json.load(open(os.path.join(logs, name + ".json")))
now = world()
expected = sorted("%s-%02d" % (h, n) for h in hosts for n in range(1, per_host + 1))

for host in hosts:
    if host not in recap:
        problems.append("%s is missing from the play recap" % host)
    elif recap[host]["unreachable"] or recap[host]["failed"]:
        problems.append("%s: %s" % (host, recap[host]))
results = {h: report.get(h, {}).get("containers", []) for h in hosts}
declared = sorted(r["name"] for h in hosts for r in results[h])
if declared != expected:
    problems.append("the report lists %d containers, expected %d" % (len(declared), len(expected)))
not_running = sorted(c for c in expected if now.get(c, ("absent",))[0] != "running")
if not_running:
    problems.append("not running according to runc: %s" % " ".join(not_running))
extra = sorted(set(now) - set(expected))
if extra:
    problems.append("runc lists containers that are not declared: %s" % " ".join(extra))

changed_containers = sorted(r["name"] for h in hosts for r in results[h] if r["changed"])
changed_hosts = sorted(h for h in hosts if recap.get(h, {}).get("changed"))
if mode == "first":
    if changed_containers != expected:
        problems.append("first run: %d of %d containers changed"
                        % (len(changed_containers), len(expected)))
    if changed_hosts != sorted(hosts):
        problems.append("first run: hosts without a change: %s"
                        % " ".join(sorted(set(hosts) - set(changed_hosts))))
elif mode == "idempotent":
    if changed_hosts or changed_containers:
        problems.append("second run changed something: hosts %s, containers %s"
                        % (changed_hosts, changed_containers))
elif mode == "restart":
    want_hosts = sorted(set(c.rsplit("-", 1)[0] for c in killed))
    if changed_containers != sorted(killed):
        problems.append("restarted %s, expected exactly %s" % (changed_containers, sorted(killed)))
    if changed_hosts != want_hosts:
        problems.append("hosts with changed>0 in the recap: %s, expected %s" % (changed_hosts, want_hosts))
    before = json.load(open(os.path.join(logs, "before-kill.pids")))
    for c in expected:
        old, new = before.get(c, [None, None])[1], now.get(c, (None, None))[1]
        if c in killed and (new == old or not new):
            problems.append("%s was killed but runc shows the same init pid %s" % (c, new))
        if c not in killed and new != old:
            problems.append("%s was not killed but its init pid went from %s to %s" % (c, old, new))
    for h in hosts:
        for r in results[h]:
            if r["name"] in killed:
                print("fleet:   %s: %s" % (r["name"], ", ".join(r["actions"])))

if problems:
    for p in problems:
        print("fleet: CHECK FAILED (%s): %s" % (name, p), file=sys.stderr)
    sys.exit(1)
elapsed = [report[h].get("elapsed", 0) for h in hosts]
print("fleet: %s: checked: %d containers running on %d hosts; recap changed per host: %s; "
      "time in the module per host: %.2f-%.2f s"
      % (name, len(expected), len(hosts), " ".join("%s=%d" % (h, recap[h]["changed"]) for h in hosts),
         min(elapsed), max(elapsed)))
PYEOF

check() {  # check RUN MODE: check a run (modes: first, idempotent, restart)
    "$PY" -c "$CHECK_PY" "$FLEET" "$2" "$1" "${HOSTS[*]}" "$PER_HOST" "${KILL[*]}" \
        || die "run '$1' is not what it must be (log: $LOGS/$1.log, report: $LOGS/$1.json)"
}

has_leftovers() {
    [ -d "$FLEET/hosts" ] && [ -n "$(find "$FLEET/hosts" -mindepth 3 -maxdepth 3 -path '*/state/*' \
        -name 'fleet-*' -print -quit)" ]
}

init_pid() {  # init_pid CONTAINER: its init pid, from runc
    local host=${1%-*}
    runc --root "$FLEET/hosts/$host/runc" state "$1" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["pid"])'
}

kill_by_hand() {
    local c pid status
    "$PY" -c "$CHECK_PY" "$FLEET" snapshot before-kill.pids "${HOSTS[*]}" "$PER_HOST" ""
    for c in "${KILL[@]}"; do
        pid=$(init_pid "$c")
        log "kill -9 $pid (init of $c)"
        kill -9 "$pid"
    done
    for c in "${KILL[@]}"; do  # until runc sees each of them stopped
        for _ in $(seq 50); do
            status=$(runc --root "$FLEET/hosts/${c%-*}/runc" state "$c" \
                | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["status"])')
            [ "$status" = stopped ] && break
            sleep 0.1
        done
        [ "$status" = stopped ] || die "$c still shows '$status' 5 s after kill -9 of its init"
    done
}

fleet_shims() {  # pids of the shims that run from a fleet host's state dir (argv: python -I -S <script> ...);
    # with "hosts", the shim hosts instead (argv: ... <script> --host=<state_dir> ...)
    "$PY" - "$FLEET/hosts/" "${1:-shims}" <<'PYEOF'
import os, sys
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        argv = open("/proc/%s/cmdline" % pid, "rb").read().decode(errors="replace").split("\0")
    except OSError:
        continue
    if any(a.startswith(sys.argv[1]) and "/.shim/shim-" in a for a in argv[1:4]):
        is_host = any(a.startswith("--host=") for a in argv)
        if is_host == (sys.argv[2] == "hosts"):
            print(pid)
PYEOF
}

cleanup() {
    preflight
    local rc=0 start
    if has_leftovers; then
        bash "$ROOT/scripts/run-tests.sh" --sync-only >/dev/null
        sshd_start
        start=$(now)
        # The module prunes every container it manages that is no longer declared: all of them.
        if ! "$VENV/bin/ansible-playbook" -i "$INVENTORY" --forks "$FORKS" "$PLAYBOOK" \
                -e fleet_container_count=0 >"$LOGS/cleanup.log" 2>&1; then
            tail -n 40 "$LOGS/cleanup.log" >&2
            log "the prune run failed (log: $LOGS/cleanup.log); removing what is left by force"
            rc=1
        else
            log "pruned every fleet container in $(secs "$start" "$(now)") s"
        fi
        local host root id pid
        for host in "${HOSTS[@]}"; do
            root="$FLEET/hosts/$host/runc"
            [ -d "$root" ] || continue
            for id in $(runc --root "$root" list --quiet 2>/dev/null); do
                log "left behind: $id (runc --root $root); deleting it by force"
                runc --root "$root" delete --force "$id" || true
                rc=1
            done
        done
        # Shims run from a fleet state dir (none should survive a prune).
        for pid in $(fleet_shims); do
            log "left behind: shim pid $pid; killing it"
            kill -9 "$pid" 2>/dev/null || true
            rc=1
        done
        # A shim host outlives its last monitor by 10 s, then exits: not a leftover; stop it now
        # rather than wait, as the state dirs go away below.
        for pid in $(fleet_shims hosts); do
            log "stopping the idle shim host pid $pid"
            kill "$pid" 2>/dev/null || true
        done
    fi
    rm -rf "$FLEET/hosts"
    sshd_stop
    [ "$rc" -eq 0 ] || die "cleanup had to remove leftovers by force (see above)"
    log "clean: no fleet container, no sshd"
}

fleet_run() {
    preflight
    if has_leftovers; then
        log "containers of an earlier fleet run are still there: removing them first"
        cleanup
    fi
    prepare
    log "${#HOSTS[@]} hosts (fleet-s1, fleet-s2 over SSH), $PER_HOST containers each, forks $FORKS"
    run_fleet first
    local t1=$WALL
    check first first
    run_fleet idempotent
    local t2=$WALL
    check idempotent idempotent
    kill_by_hand
    run_fleet restart
    local t3=$WALL
    check restart restart
    printf 'fleet: wall times (%d hosts x %d containers, forks %d):\n' "${#HOSTS[@]}" "$PER_HOST" "$FORKS"
    printf 'fleet:   first converge   %6s s\n' "$t1"
    printf 'fleet:   idempotent rerun %6s s\n' "$t2"
    printf 'fleet:   after kill -9    %6s s  (restarted: %s)\n' "$t3" "${KILL[*]}"
    log "the containers stay; remove them and stop the sshd with: scripts/fleet.sh --cleanup"
}

# --- 50 containers on one host: a loop of tasks versus one task ---------------------------------------
bench50() {
    preflight
    bash "$ROOT/scripts/run-tests.sh" --sync-only >/dev/null
    "$PY" "$ROOT/tests/utils/make_busybox_bundle.py" "$FLEET/busybox" >/dev/null
    local mode step start results=()
    for mode in loop plural; do
        rm -rf "$FLEET/bench"
        for step in first:running rerun:running removal:absent; do
            start=$(now)
            "$VENV/bin/ansible-playbook" -i localhost, -c local "$ROOT/playbooks/fleet/bench50.yml" \
                -e bench_mode="$mode" -e bench_state="${step#*:}" -e bench_root="$FLEET/bench" \
                -e fleet_rootfs="$FLEET/busybox/rootfs" >"$LOGS/bench50-$mode-${step%%:*}.log" 2>&1 \
                || { tail -n 30 "$LOGS/bench50-$mode-${step%%:*}.log" >&2; die "bench50 $mode ${step%%:*} failed"; }
            results+=("$mode ${step%%:*} $(secs "$start" "$(now)")")
            grep -q 'changed=0' "$LOGS/bench50-$mode-${step%%:*}.log" && [ "${step%%:*}" != rerun ] \
                && die "bench50 $mode ${step%%:*} changed nothing"
            [ "${step%%:*}" != rerun ] || grep -q 'localhost *: ok=[0-9]* *changed=0 ' "$LOGS/bench50-$mode-rerun.log" \
                || die "bench50 $mode rerun changed something"
        done
        [ -z "$(runc --root "$FLEET/bench/runc" list --quiet 2>/dev/null)" ] || die "bench50 $mode left containers"
    done
    rm -rf "$FLEET/bench"
    printf 'fleet: 50 containers on one host, whole ansible-playbook runs (s):\n'
    printf 'fleet:   %-7s %-8s %s\n' mode step seconds
    local r
    for r in "${results[@]}"; do
        # shellcheck disable=SC2086
        printf 'fleet:   %-7s %-8s %s\n' $r
    done
}

case "${1:-}" in
    "") fleet_run ;;
    --cleanup) cleanup ;;
    --bench50) bench50 ;;
    --sshd-start) preflight; sshd_start ;;
    --sshd-stop) preflight; sshd_stop ;;
    *) die "unknown argument '$1' (see the header of $0)" ;;
esac
