#!/usr/bin/env bash
# Build the collection artifact the way a release would, install it into an empty collections path and
# use it from there, as a user who ran `ansible-galaxy collection install` would (stage `artifact` of
# scripts/run-tests.sh):
#
#   1. ansible-galaxy collection build, from the copy of the git-known files in build/collections;
#   2. its file list: what users run is in it (plugins, roles, playbooks, docs, changelog), and what is
#      not theirs is not (tests, molecule scenarios, bench results, dev scripts, build output);
#   3. ansible-galaxy collection install into a temporary path, with nothing else on the collections path;
#   4. ansible-doc lists every module of the repository, from the installed copy;
#   5. the demo playbook of the installed copy converges its containers (names prefixed art-, its own
#      state dirs), a second run changes nothing, and it is removed again.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"
COPY="$ROOT/build/collections/ansible_collections/oci/runtime"
OUT="$ROOT/build/artifact"

log() { printf 'artifact: %s\n' "$*"; }
die() { printf 'artifact: ERROR: %s\n' "$*" >&2; exit 1; }

[ -x "$VENV/bin/ansible-galaxy" ] || die "$VENV is missing: run 'make setup'"
export PATH="$VENV/bin:$PATH"
bash "$ROOT/scripts/run-tests.sh" --sync-only >/dev/null

version=$(sed -n 's/^version: *//p' "$ROOT/galaxy.yml")
rm -rf "$OUT"
mkdir -p "$OUT"
(cd "$COPY" && ansible-galaxy collection build --output-path "$OUT") >/dev/null
tarball="$OUT/oci-runtime-$version.tar.gz"
[ -f "$tarball" ] || die "ansible-galaxy collection build wrote no $tarball"
log "built $(basename "$tarball") ($(du -k "$tarball" | cut -f1) KiB)"

# --- what is in it -----------------------------------------------------------------------------------------
tar -tzf "$tarball" | sed 's|^\./||; s|/$||' | sort >"$OUT/files.txt"
for needed in MANIFEST.json FILES.json README.md COPYING meta/runtime.yml \
              plugins/modules/container.py plugins/module_utils/_runtime/shim.py \
              roles/runtime/meta/argument_specs.yml roles/containers/meta/argument_specs.yml \
              playbooks/demo.yml docs/architecture.md changelogs/changelog.yaml CHANGELOG.md; do
    grep -qxF "$needed" "$OUT/files.txt" || die "the artifact lacks $needed"
done
leaked=$(grep -E '^(tests|extensions|bench|build|scripts|\.venv|\.ci|\.git|collections|changelogs/fragments/.)' "$OUT/files.txt" || true)
leaked+=$(grep -E '(^|/)(__pycache__|\.pytest_cache|Makefile|requirements-dev\.txt|\.ansible-lint)($|/)' "$OUT/files.txt" || true)
[ -z "$leaked" ] || die "the artifact holds files that are not for users:
$leaked"
log "contents ok: $(wc -l <"$OUT/files.txt") entries, no tests, scenarios, bench results, dev scripts or build output"

# --- installed, and used from there -----------------------------------------------------------------------
work=$(mktemp -d /tmp/oci-runtime-artifact.XXXXXX)
cleanup() {
    if [ -f "$work/installed" ]; then
        ansible-playbook -i "$work/inventory.ini" "${demo_vars[@]}" -e demo_state=absent \
            "$work/collections/ansible_collections/oci/runtime/playbooks/demo.yml" >"$work/absent.log" 2>&1 \
            || { cat "$work/absent.log" >&2; rm -rf "$work"; die "removing the demo failed"; }
    fi
    rm -rf "$work"
}
trap cleanup EXIT
export ANSIBLE_COLLECTIONS_PATH="$work/collections"
export ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false
ansible-galaxy collection install --offline -p "$work/collections" "$tarball" >/dev/null
touch "$work/installed"
export ANSIBLE_PYTHON_INTERPRETER="$VENV/bin/python"
unset ANSIBLE_CONFIG

listed=$(ansible-doc -t module -l oci.runtime | awk '{print $1}' | sort)
expected=$(find "$ROOT/plugins/modules" -name '*.py' ! -name '__init__.py' -printf 'oci.runtime.%f\n' | sed 's/\.py$//' | sort)
[ "$listed" = "$expected" ] || die "ansible-doc lists other modules from the installed artifact than the repository has:
listed:   $(tr '\n' ' ' <<<"$listed")
expected: $(tr '\n' ' ' <<<"$expected")"
ansible-doc oci.runtime.container >/dev/null
log "ansible-doc from the installed artifact: $(echo "$listed" | wc -l) modules"

printf 'localhost ansible_connection=local ansible_python_interpreter=%s\n' "$VENV/bin/python" >"$work/inventory.ini"
demo_vars=(-e demo_prefix=art- -e "demo_dir=$work/demo" -e "demo_state_dir=$work/state" -e "demo_runtime_root=$work/runc-root"
           -e demo_subnet=10.212.1.0/24 -e demo_web_port=18081)
playbook="$work/collections/ansible_collections/oci/runtime/playbooks/demo.yml"
for run in first second; do
    if ! ansible-playbook -i "$work/inventory.ini" "${demo_vars[@]}" "$playbook" >"$work/$run.log" 2>&1; then
        cat "$work/$run.log" >&2
        die "the demo from the installed artifact failed ($run run)"
    fi
    recap=$(grep -E '^localhost +:' "$work/$run.log")
    log "demo, $run run: $recap"
done
grep -qE '^localhost +: .*changed=0 ' "$work/second.log" || die "the demo's second run changed something: $recap"
grep -qE '^localhost +: .*changed=[1-9]' "$work/first.log" || die "the demo's first run changed nothing: was it already there?"
log "ok: built, installed, documented and run from $tarball"
