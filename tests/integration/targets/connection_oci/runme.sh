#!/usr/bin/env bash
# Tests the connection plugin oci.runtime.oci and the inventory plugin oci.runtime.containers
# against real containers on this host (the controller is the container host):
#   setup.yml            builds the bundles and starts ci-conn-py (the host's /usr with Python),
#                        ci-conn-bb (busybox), ci-conn-nosh (no /bin/sh), ci-conn-stopped
#   test_delegate.yml    a task delegated to a container that is not in the inventory
#   ansible (ad hoc)     the plugin's options through environment variables
#   ansible-inventory    lists the containers through two inventory sources (to JSON files)
#   test_connection.yml  command, copy, stat, fetch, template, raw inside ci-conn-py, as root and as
#                        a user by name, with and without pipelining
#   test_errors.yml      what cannot be reached (no shell, stopped, missing, bad id, paused)
#   check_inventory.yml  asserts on what ansible-inventory listed
#   ansible (ad hoc)     the inventory's graph, and its hosts reached as they are listed
# Everything lives in one temp dir and is removed at the end, whatever happens (cleanup.yml then
# fails if the modules left containers or shims behind).
set -eux
export PS4='+ $(date +%T.%N | cut -c1-12) '

export ANSIBLE_ROLES_PATH=..
work=$(mktemp -d /tmp/oci-runtime-it-connection.XXXXXX)
local_inventory="$work/local.ini"

cleanup() {
    rc=$?
    ansible-playbook -i "$local_inventory" cleanup.yml -e "work=$work" || rc=1
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT

cat >"$local_inventory" <<INI
localhost ansible_connection=local ansible_python_interpreter="{{ ansible_playbook_python }}"
INI

ansible-playbook -i "$local_inventory" setup.yml -e "work=$work"

# A binary file that does not fit in one pipe buffer, to copy and fetch.
head -c 3145728 /dev/urandom >"$work/payload.bin"

# --- the connection plugin, with a static inventory -------------------------------------------------
cat >"$work/containers.ini" <<INI
[py]
ci-conn-py ansible_oci_state_dir=$work/state ansible_oci_runtime=runc ansible_oci_runtime_root=$work/runc-root ansible_pipelining=false
ci-conn-py-app ansible_host=ci-conn-py ansible_user=app ansible_oci_state_dir=$work/state ansible_pipelining=true

[py:vars]
ansible_python_interpreter=/usr/bin/python3

[broken]
ci-conn-nosh expect_msg='exec: "/bin/sh": stat /bin/sh: no such file or directory'
ci-conn-stopped expect_msg='container does not exist'
ci-conn-ghost expect_msg='container does not exist'
ci-conn-badid ansible_host=../ci-conn-py expect_msg='is not valid'

[broken:vars]
ansible_oci_runtime_root=$work/runc-root

[oci:children]
py
broken

[oci]
ci-conn-bb ansible_oci_runtime_root=$work/runc-root

[oci:vars]
ansible_connection=oci.runtime.oci
ansible_oci_state_dir=$work/state
INI

# One task delegated to a container that is not in the inventory (the plugin's example).
ansible-playbook -i "$local_inventory" -e "work=$work" test_delegate.yml

# The options through environment variables, ad hoc ($(hostname) is expanded in the container).
# shellcheck disable=SC2016
out=$(ANSIBLE_OCI_STATE_DIR="$work/state" ANSIBLE_OCI_RUNTIME_ROOT="$work/runc-root" \
    ansible -i 'ci-conn-bb,' -c oci.runtime.oci -m raw -a 'echo "env-$(hostname)"' all)
grep -q 'env-ci-conn-bb' <<<"$out"

# --- the inventory plugin ----------------------------------------------------------------------------
cat >"$work/running.oci_containers.yml" <<YAML
plugin: oci.runtime.containers
state_dirs:
  - $work/state
compose:
  ansible_python_interpreter: "'/usr/bin/python3' if oci_labels.python | default('') == 'yes' else omit"
groups:
  pythons: oci_labels.python | default('') == 'yes'
YAML
cat >"$work/all.oci_containers.yml" <<YAML
plugin: oci.runtime.containers
state_dirs:
  - $work/state
  - $work/no-such-state-dir
statuses: [running, stopped]
label_groups: false
keyed_groups:
  - key: oci_status
    prefix: status
  - key: oci_labels
    prefix: tag
YAML

ansible-inventory -i "$work/running.oci_containers.yml" --list >"$work/running.json"
ansible-inventory -i "$work/all.oci_containers.yml" --list >"$work/all.json"

# One run for the plays (each ansible-playbook start costs seconds): the connection, what it cannot
# reach, and what the inventory plugin listed.
ansible-playbook -i "$work/containers.ini" -i "$local_inventory" -e "work=$work" \
    test_connection.yml test_errors.yml check_inventory.yml

graph=$(ansible-inventory -i "$work/running.oci_containers.yml" --graph)
grep -q '@label_role_web:' <<<"$graph"
grep -q -- '--ci-conn-py$' <<<"$graph"

# The listed hosts are reachable as they are: a module where there is a Python, raw elsewhere.
out=$(ansible -i "$work/running.oci_containers.yml" -m ansible.builtin.command -a 'hostname' pythons)
grep -q 'ci-conn-py' <<<"$out"
# shellcheck disable=SC2016
out=$(ansible -i "$work/running.oci_containers.yml" -m ansible.builtin.raw -a 'echo "raw-$(hostname)"' label_role_worker)
grep -q 'raw-ci-conn-bb' <<<"$out"
