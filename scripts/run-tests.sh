#!/usr/bin/env bash
# Run the oci.runtime test stages, in order, stopping at the first failure:
#
#   sanity       ansible-test sanity (all tests)
#   types        mypy plugins/module_utils        (--disallow-untyped-defs --python-version 3.8: every
#                                                 function annotated, checked as the managed hosts'
#                                                 oldest Python; settings in .mypy.ini)
#   units        ansible-test units --venv        (tests/unit/)
#   docs         scripts/docs.sh                  (the HTML docs site, warnings are errors), and the
#                                                 changelog: fragments lint, CHANGELOG.md is what
#                                                 changelogs/changelog.yaml renders to
#   integration  ansible-test integration --venv  (tests/integration/targets/, real containers, as root)
#   molecule     ansible-lint (roles, playbooks, scenarios), molecule test --all (extensions/molecule/:
#                                                 the roles against this host)
#   fleet        scripts/fleet.sh, then --cleanup     (playbooks/fleet.yml: 8 hosts, 2 over SSH to an sshd on
#                                                 loopback, 10 containers each: first, idempotent and
#                                                 kill-restart runs checked)
#   pytest_ansible pytest tests/pytest_ansible     (the modules through pytest-ansible's fixtures, real
#                                                 containers; its collection finder on)
#   functional   pytest -n 2 tests/functional     (the runtime core against real runc; pytest-ansible
#                                                 is switched off there: its collection finder would
#                                                 shadow the checkout)
#   artifact     scripts/artifact-check.sh        (ansible-galaxy build, contents, install into an empty
#                                                 collections path, ansible-doc and the demo from there)
# and, only when named (not yet part of a run without stage names: it has not passed end to end):
#   guest        scripts/guest/run.sh per release (tests/guest/site.yml over SSH in a Debian 12 and a Debian 13
#                                                 guest under qemu: cgroup v2, systemd as PID 1, runc and
#                                                 crun; images built once and cached: docs/guests.md).
#                                                 OCI_RUNTIME_GUESTS picks the releases (default "bookworm
#                                                 trixie"); no guest that builds and boots is a failure
#
# Usage: scripts/run-tests.sh [stage ...]     (no stage: all of them)
#        scripts/run-tests.sh --sync-only     (only refresh the collection copy, e.g. for the demo)
#
# ansible-test only runs from inside .../ansible_collections/<namespace>/<name>, and it resolves the real
# working directory, so a symlink will not do: the files git knows (tracked, plus untracked ones that are not
# ignored) are copied to build/collections/ansible_collections/oci/runtime on every run, and files that are
# no longer in the repository are removed from the copy. ansible-test's own output (tests/output/, which
# holds the --venv environments it reuses) is kept, and so is the copy's own empty git repository (see
# sync_tree). Run scripts/setup.sh first (make setup).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"
# OCI_RUNTIME_COLLECTIONS puts the copy elsewhere, so that two checkouts' runs on one machine do not share it.
COLLECTIONS="${OCI_RUNTIME_COLLECTIONS:-$ROOT/build/collections}"
BUILD="$COLLECTIONS/ansible_collections/oci/runtime"
ALL_STAGES=(sanity types units docs integration molecule fleet pytest_ansible functional artifact)
KNOWN_STAGES=("${ALL_STAGES[@]}" guest)

log() { printf 'run-tests: %s\n' "$*"; }
die() { printf 'run-tests: ERROR: %s\n' "$*" >&2; exit 1; }

sync_only=false
if [ "${1:-}" = --sync-only ]; then
    sync_only=true
    shift
fi
stages=("$@")
[ "${#stages[@]}" -gt 0 ] || stages=("${ALL_STAGES[@]}")
for stage in "${stages[@]}"; do
    case " ${KNOWN_STAGES[*]} " in
        *" $stage "*) ;;
        *) die "unknown stage '$stage' (stages: ${KNOWN_STAGES[*]})" ;;
    esac
done

[ -x "$VENV/bin/ansible-test" ] || die "$VENV is missing or incomplete: run 'make setup' (scripts/setup.sh) first"
command -v rsync >/dev/null || die "rsync is missing: run 'make setup' (scripts/setup.sh) first"
PY_VERSION=$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])') \
    || die "$VENV/bin/python does not run: run 'make setup' to recreate the venv"

export PATH="$VENV/bin:$PATH"
export ANSIBLE_PYTHON_INTERPRETER="$VENV/bin/python"
export ANSIBLE_COLLECTIONS_PATH="$COLLECTIONS"
export PYTHONDONTWRITEBYTECODE=1

# --- refresh the collection copy -------------------------------------------------------------------------
sync_tree() {
    local list
    list=$(mktemp)
    git -C "$ROOT" ls-files -z -co --exclude-standard | sort -z -u >"$list"
    mkdir -p "$BUILD"
    # ansible-test takes its file list from the nearest .git above the collection: without one of its own,
    # the copy would be seen through this repository, which ignores build/, and look empty. An empty
    # repository is enough (it lists untracked files that .gitignore does not exclude).
    [ -d "$BUILD/.git" ] || git -c init.defaultBranch=main init -q "$BUILD"
    # Listed files that were deleted from the work tree are deleted from the copy too.
    rsync -a --from0 --files-from="$list" --ignore-missing-args --delete-missing-args "$ROOT/" "$BUILD/"
    # Files in the copy that the repository no longer has (tests/output/ is ansible-test's, left alone).
    (cd "$BUILD" && find . \( -path ./.git -o -path ./tests/output \) -prune -o \( -type f -o -type l \) -printf '%P\0' | sort -z) \
        | comm -z -23 - "$list" | (cd "$BUILD" && xargs -0 -r rm -f --)
    find "$BUILD" -mindepth 1 -type d -empty -not -path "$BUILD/tests/output" -not -path "$BUILD/tests/output/*" \
        -not -path "$BUILD/.git/*" -delete
    rm -f "$list"
}

has_tests() {  # has_tests DIR: whether DIR holds any test_*.py or *_test.py file
    [ -d "$1" ] && [ -n "$(find "$1" -type f \( -name 'test_*.py' -o -name '*_test.py' \) -print -quit)" ]
}

run() {  # run CMD...: print and run a command in the collection copy
    log "\$ $*"
    (cd "$BUILD" && "$@")
}

# --- stages ----------------------------------------------------------------------------------------------
# Stages run as `if ! stage_x`, where bash ignores `set -e`: a stage of several commands must check each
# one itself (`|| return 1`), or an early failure is hidden by a later success.
stage_sanity() {
    run ansible-test sanity --color no --python "$PY_VERSION"
}

stage_types() {
    # From the collections root, where the ansible_collections.oci.runtime imports resolve; the cache sits
    # with ansible-test's output in the copy.
    local cmd=(mypy --config-file "$BUILD/.mypy.ini" --cache-dir "$BUILD/tests/output/.mypy_cache"
        --disallow-untyped-defs --python-version 3.8 -p ansible_collections.oci.runtime.plugins.module_utils)
    log "\$ (cd $COLLECTIONS && ${cmd[*]})"
    (cd "$COLLECTIONS" && "${cmd[@]}")
}

stage_units() {
    if ! has_tests "$BUILD/tests/unit"; then
        die "units: no test files under tests/unit/: a suite that runs nothing passes nothing"
    fi
    run ansible-test units --color no --venv --python "$PY_VERSION"
}

stage_docs() {
    bash "$ROOT/scripts/docs.sh" || return 1
    if [ ! -f "$BUILD/changelogs/changelog.yaml" ] || [ ! -f "$BUILD/CHANGELOG.md" ]; then
        die "docs: changelogs/changelog.yaml or CHANGELOG.md is missing: release with antsibull-changelog"
    fi
    run antsibull-changelog lint || return 1
    local rendered
    rendered=$(mktemp)
    run antsibull-changelog generate --output "$rendered" || { rm -f "$rendered"; return 1; }
    if ! diff -u "$BUILD/CHANGELOG.md" "$rendered"; then
        rm -f "$rendered"
        die "docs: CHANGELOG.md is not what changelogs/changelog.yaml renders to: run 'antsibull-changelog generate'"
    fi
    rm -f "$rendered"
}

stage_integration() {
    if [ -z "$(find "$BUILD/tests/integration/targets" -mindepth 1 -maxdepth 1 -type d -print -quit 2>/dev/null)" ]; then
        die "integration: no targets under tests/integration/targets/: a suite that runs nothing passes nothing"
    fi
    [ "$(id -u)" -eq 0 ] || die "integration tests run real containers and need root"
    run ansible-test integration --color no --venv --python "$PY_VERSION" --allow-destructive --allow-root
}

stage_molecule() {
    if [ -z "$(find "$BUILD/extensions/molecule" -mindepth 2 -maxdepth 2 -name molecule.yml -print -quit 2>/dev/null)" ]; then
        die "molecule: no scenarios under extensions/molecule/: a suite that runs nothing passes nothing"
    fi
    [ "$(id -u)" -eq 0 ] || die "molecule scenarios install packages and run real containers: they need root"
    run env NO_COLOR=1 ansible-lint roles playbooks extensions || return 1
    run env NO_COLOR=1 molecule test --all
}

stage_fleet() {
    [ "$(id -u)" -eq 0 ] || die "fleet: the fleet example runs real containers and an sshd: it needs root"
    [ -x /usr/sbin/sshd ] || die "fleet: /usr/sbin/sshd is missing (openssh-server): run 'make setup' first"
    # fleet.sh fails if the sshd cannot start or be logged in to; the cleanup runs whatever happened.
    local rc=0
    log "\$ scripts/fleet.sh"
    bash "$ROOT/scripts/fleet.sh" || rc=$?
    log "\$ scripts/fleet.sh --cleanup"
    bash "$ROOT/scripts/fleet.sh" --cleanup || rc=$((rc ? rc : 1))
    return "$rc"
}

stage_pytest_ansible() {
    if ! has_tests "$BUILD/tests/pytest_ansible"; then
        die "pytest_ansible: no test files under tests/pytest_ansible/: a suite that runs nothing passes nothing"
    fi
    [ "$(id -u)" -eq 0 ] || die "pytest_ansible: the examples run real containers and need root"
    # Run from the collection copy: pytest-ansible sees galaxy.yml in .../ansible_collections/oci/runtime
    # and puts build/collections on the collections path (no collections/ symlink tree is made).
    run "$VENV/bin/python" -m pytest -p no:cacheprovider tests/pytest_ansible \
        --inventory tests/pytest_ansible/inventory.ini --ansible-host-pattern pa_hosts --ansible-connection local
}

stage_artifact() {
    bash "$ROOT/scripts/artifact-check.sh"
}

stage_guest() {
    [ "$(id -u)" -eq 0 ] || die "guest: building and booting the guests needs root (debootstrap, chroot)"
    local release rc=0 releases
    read -r -a releases <<<"${OCI_RUNTIME_GUESTS:-bookworm trixie}"
    [ "${#releases[@]}" -gt 0 ] || die "guest: OCI_RUNTIME_GUESTS names no release"
    # The guests run one after the other: under emulation each one keeps a core busy, and a second
    # guest beside it slows both (docs/guests.md has the times).
    for release in "${releases[@]}"; do
        log "\$ scripts/guest/run.sh $release"
        bash "$BUILD/scripts/guest/run.sh" "$release" || { log "guest: $release FAILED"; rc=1; }
    done
    return "$rc"
}

stage_functional() {
    if ! has_tests "$BUILD/tests/functional"; then
        die "functional: no test files under tests/functional/: a suite that runs nothing passes nothing"
    fi
    run env PYTHONPATH="$COLLECTIONS${PYTHONPATH:+:$PYTHONPATH}" \
        "$VENV/bin/python" -m pytest -n 2 -p no:cacheprovider -p no:pytest-ansible tests/functional
}

sync_tree
log "collection copy refreshed: $BUILD"
if "$sync_only"; then
    exit 0
fi
for stage in "${stages[@]}"; do
    start=$SECONDS
    log "== $stage =="
    if ! "stage_$stage"; then
        die "stage '$stage' failed after $((SECONDS - start)) s"
    fi
    log "$stage passed in $((SECONDS - start)) s"
done
log "all stages passed: ${stages[*]}"
