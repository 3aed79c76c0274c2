#!/usr/bin/env bash
# Tests playbooks/migrate.yml (oci.runtime.migrate): two inventory hosts on this machine, host_a and
# host_b (both ansible_connection=local), each with its own state dir, runc root, checkpoint dir and
# bundle location. A counting busybox container is started on host_a, moved to host_b with the
# playbook, checked there (the counter goes on from where it stopped), then moved back to host_a
# (over its old bundle) and checked again. Everything is removed at the end, whatever happens.
set -eux

export ANSIBLE_ROLES_PATH=..
work=$(mktemp -d /tmp/oci-runtime-it-migrate.XXXXXX)
inventory="$work/inventory.ini"

cleanup() {
    rc=$?
    ansible-playbook -i "$inventory" cleanup.yml -e "work=$work" || rc=1
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT

cat >"$inventory" <<INI
[oci_hosts]
host_a oci_state_dir=$work/a/state oci_runtime_root=$work/a/runc-root oci_checkpoint_dir=$work/a/checkpoints migrate_bundle=$work/a/bundles/counter
host_b oci_state_dir=$work/b/state oci_runtime_root=$work/b/runc-root oci_checkpoint_dir=$work/b/checkpoints migrate_bundle=$work/b/srv/counter-bundle

[oci_hosts:vars]
ansible_connection=local
ansible_python_interpreter={{ ansible_playbook_python }}
INI

# The migration playbook, by its name in the collection.
migrate() {
    ansible-playbook -i "$inventory" oci.runtime.migrate \
        -e migrate_container=ck-mig -e "migrate_source=$1" -e "migrate_target=$2" "${@:3}"
}

ansible-playbook -i "$inventory" setup.yml

# host_a -> host_b, keeping the checkpoints.
migrate host_a host_b -e migrate_checkpoint=move1 -e migrate_keep_checkpoint=true
ansible-playbook -i "$inventory" verify.yml -e verify_host=host_b -e verify_from=host_a \
    -e verify_checkpoint=move1 -e verify_kept=true

# host_b -> host_a, over the old bundle on host_a, with the default checkpoint name, not kept.
migrate host_b host_a
ansible-playbook -i "$inventory" verify.yml -e verify_host=host_a -e verify_from=host_b \
    -e verify_checkpoint=migrate -e verify_kept=false
