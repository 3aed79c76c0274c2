#!/usr/bin/python
# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: containers
short_description: Converge a host's whole set of OCI containers, their limits and processes in one task
version_added: 0.1.0
description:
  - Converges every container of O(containers) on the host in one module run, with the same logic
    as M(oci.runtime.bundle), M(oci.runtime.container), M(oci.runtime.resource_update) and
    M(oci.runtime.process) (each item is handed to them in turn; its bundle when it has
    O(containers[].build), the container, then its O(containers[].resources), then its
    O(containers[].processes)). One task instead of one per container saves Ansible's per-task
    cost, and independent containers are converged concurrently (O(concurrency) threads).
  - Every container converged by this module carries the label C(oci.runtime.managed-by) with the
    value O(managed_by). It is added on top of the item's O(containers[].labels) (which are still
    compared exactly, as by M(oci.runtime.container), but for that one key) or, when the item gives
    no labels, to the labels the container already has. A container that existed before, made by
    M(oci.runtime.container), is adopted (the label is added in place, a change once).
  - With O(prune=true), containers recorded under O(state_dir) that carry C(oci.runtime.managed-by)
    with the value O(managed_by) and are not declared in O(containers) are stopped (O(prune_stop_signal),
    then C(SIGKILL) after O(prune_stop_timeout) seconds) and removed, before the declared ones are
    converged. Containers without that label, or with another O(managed_by) value, are never pruned.
  - A failing item does not stop the others. Every item (and every prune) is converged; then the
    task fails if any of them failed, with RV(containers) holding every item's result (failed ones
    with C(failed) and C(msg)) and C(msg) listing each failure.
author:
  - oci.runtime developers (@oci-runtime)
extends_documentation_fragment:
  - oci.runtime.common
  - oci.runtime.common.attributes
options:
  containers:
    description:
      - The containers this host must have, each with the options of M(oci.runtime.container) (but
        O(state_dir), which is per task), plus O(containers[].build), O(containers[].resources)
        and O(containers[].processes).
      - Names must be unique. An empty list with O(prune=true) removes every container this module
        manages under O(state_dir) (with this O(managed_by)).
      - O(state_dir), O(runtime) and O(runtime_root) of the task are the defaults of every item.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - The container id, as O(oci.runtime.container#module:name).
        type: str
        required: true
      bundle:
        description:
          - Absolute path of the OCI bundle, as O(oci.runtime.container#module:bundle).
          - Default O(containers[].build.path) when the item has O(containers[].build).
        type: path
      build:
        description:
          - The definition of the container's bundle, built (or updated) as M(oci.runtime.bundle)
            does, with the same options but O(oci.runtime.bundle#module:state), before the
            container is converged. A bundle whose C(config.json) changes recreates the container.
          - Exactly one of O(containers[].build.rootfs_archive), O(containers[].build.rootfs_dir)
            and O(containers[].build.image) is required.
          - The bundles of all items are converged (concurrently) before any container, so an item
            without O(containers[].build) may run from a bundle that another item builds. Items
            may build the same bundle path only with the same definition; it is then built once.
          - Not built when the item's O(containers[].state) is V(absent).
          - A bundle that cannot be built fails its items (and their containers are left alone);
            the other items are converged all the same.
        type: dict
        suboptions:
          path:
            description:
              - As O(oci.runtime.bundle#module:path); default O(containers[].bundle). One of the
                two is required.
            type: path
          rootfs_archive:
            description: As O(oci.runtime.bundle#module:rootfs_archive).
            type: path
          rootfs_dir:
            description: As O(oci.runtime.bundle#module:rootfs_dir).
            type: path
          image:
            description:
              - As O(oci.runtime.bundle#module:image). An image of the store is looked up in
                O(image_store) of the task.
            type: str
          image_ref:
            description: As O(oci.runtime.bundle#module:image_ref).
            type: str
          allow_devices:
            description: As O(oci.runtime.bundle#module:allow_devices).
            type: bool
            default: false
          args:
            description: As O(oci.runtime.bundle#module:args).
            type: list
            elements: str
          env:
            description: As O(oci.runtime.bundle#module:env).
            type: dict
          cwd:
            description: As O(oci.runtime.bundle#module:cwd).
            type: str
          hostname:
            description: As O(oci.runtime.bundle#module:hostname).
            type: str
          user:
            description: As O(oci.runtime.bundle#module:user).
            type: str
          readonly_rootfs:
            description: As O(oci.runtime.bundle#module:readonly_rootfs).
            type: bool
            default: true
          mounts:
            description: As O(oci.runtime.bundle#module:mounts).
            type: list
            elements: dict
          namespaces:
            description: As O(oci.runtime.bundle#module:namespaces).
            type: list
            elements: raw
          capabilities:
            description: As O(oci.runtime.bundle#module:capabilities).
            type: list
            elements: str
          resources:
            description: As O(oci.runtime.bundle#module:resources).
            type: dict
          annotations:
            description: As O(oci.runtime.bundle#module:annotations).
            type: dict
          spec:
            description: As O(oci.runtime.bundle#module:spec).
            type: dict
          networks:
            description: As O(oci.runtime.bundle#module:networks).
            type: list
            elements: dict
      state:
        description:
          - As O(oci.runtime.container#module:state).
          - O(containers[].resources) are converged when the state is V(running) or V(paused),
            O(containers[].processes) when it is V(running); otherwise they are left alone.
        type: str
        choices: [running, paused, stopped, absent]
        default: running
      runtime:
        description:
          - The OCI runtime of this container; default O(runtime).
        type: str
      runtime_root:
        description:
          - The runtime's state directory for this container; default O(runtime_root).
        type: path
      runtime_args:
        description:
          - As O(oci.runtime.container#module:runtime_args).
        type: list
        elements: str
      labels:
        description:
          - As O(oci.runtime.container#module:labels), plus the C(oci.runtime.managed-by) label that
            this module adds. Giving C(oci.runtime.managed-by) a value other than O(managed_by) is
            an error.
        type: dict
      stdin:
        description:
          - As O(oci.runtime.container#module:stdin).
        type: path
      stdout:
        description:
          - As O(oci.runtime.container#module:stdout).
        type: path
      stderr:
        description:
          - As O(oci.runtime.container#module:stderr).
        type: path
      no_pivot_root:
        description:
          - As O(oci.runtime.container#module:no_pivot_root).
        type: bool
      start_timeout:
        description:
          - As O(oci.runtime.container#module:start_timeout).
        type: float
        default: 30
      stop_timeout:
        description:
          - As O(oci.runtime.container#module:stop_timeout).
        type: float
        default: 10
      stop_signal:
        description:
          - As O(oci.runtime.container#module:stop_signal).
        type: str
        default: SIGTERM
      force_recreate:
        description:
          - As O(oci.runtime.container#module:force_recreate).
        type: bool
        default: false
      resources:
        description:
          - Live cgroup limits of the container, converged as M(oci.runtime.resource_update) does
            (same option names and units; only the options given are compared).
          - Limits set this way do not survive a recreate; as the container is converged first,
            a recreated container gets them again in the same task.
        type: dict
        suboptions:
          cpu_shares:
            description: As O(oci.runtime.resource_update#module:cpu_shares).
            type: int
          blkio_weight:
            description: As O(oci.runtime.resource_update#module:blkio_weight).
            type: int
          cpu_period:
            description: As O(oci.runtime.resource_update#module:cpu_period).
            type: int
          cpu_quota:
            description: As O(oci.runtime.resource_update#module:cpu_quota).
            type: int
          cpuset_cpus:
            description: As O(oci.runtime.resource_update#module:cpuset_cpus).
            type: str
          cpuset_mems:
            description: As O(oci.runtime.resource_update#module:cpuset_mems).
            type: str
          kernel_memory:
            description: As O(oci.runtime.resource_update#module:kernel_memory) (ignored, with a warning).
            type: raw
          kernel_tcp_memory:
            description: As O(oci.runtime.resource_update#module:kernel_tcp_memory) (ignored, with a warning).
            type: raw
          memory:
            description: As O(oci.runtime.resource_update#module:memory).
            type: raw
          memory_reservation:
            description: As O(oci.runtime.resource_update#module:memory_reservation).
            type: raw
          memory_swap:
            description: As O(oci.runtime.resource_update#module:memory_swap).
            type: raw
          pids_limit:
            description: As O(oci.runtime.resource_update#module:pids_limit).
            type: int
      processes:
        description:
          - Extra processes of the container, each converged as M(oci.runtime.process) does (same
            options, without O(oci.runtime.process#module:container)), in the order given, after
            the container and its limits.
          - A process with V(exited) (the default) that exits non-zero fails its item.
        type: list
        elements: dict
        suboptions:
          id:
            description: As O(oci.runtime.process#module:id).
            type: str
            required: true
          args:
            description: As O(oci.runtime.process#module:args).
            type: list
            elements: str
          env:
            description: As O(oci.runtime.process#module:env).
            type: dict
          cwd:
            description: As O(oci.runtime.process#module:cwd).
            type: str
          user:
            description: As O(oci.runtime.process#module:user).
            type: str
          stdin:
            description: As O(oci.runtime.process#module:stdin).
            type: path
          stdout:
            description: As O(oci.runtime.process#module:stdout).
            type: path
          stderr:
            description: As O(oci.runtime.process#module:stderr).
            type: path
          state:
            description: As O(oci.runtime.process#module:state).
            type: str
            choices: [running, exited, absent]
            default: exited
          timeout:
            description: As O(oci.runtime.process#module:timeout).
            type: float
          start_timeout:
            description: As O(oci.runtime.process#module:start_timeout).
            type: float
            default: 30
          signal:
            description: As O(oci.runtime.process#module:signal).
            type: str
  prune:
    description:
      - Stop and remove the containers under O(state_dir) that carry C(oci.runtime.managed-by) with
        the value O(managed_by) and are not in O(containers). Each is checked again under its lock
        just before it is removed.
    type: bool
    default: false
  managed_by:
    description:
      - The value of the C(oci.runtime.managed-by) label that this task sets on its containers and
        that O(prune) looks for. Give each independent set of containers that shares a
        O(state_dir) its own value, so that pruning one set never touches another.
    type: str
    default: containers
  concurrency:
    description:
      - How many containers are converged at the same time (threads in the module). V(1)
        converges them one after the other, in order.
    type: int
    default: 8
  prune_stop_signal:
    description:
      - The signal that stops a container removed by O(prune), as
        O(oci.runtime.container#module:stop_signal) (a name such as V(SIGTERM) or V(TERM), or a
        number). Pruned containers are no longer declared, so their own
        O(containers[].stop_signal) is not known; this one applies to all of them.
    type: str
    default: SIGTERM
  prune_stop_timeout:
    description:
      - Seconds to wait after O(prune_stop_signal) before a pruned container is killed with
        C(SIGKILL), as O(oci.runtime.container#module:stop_timeout). V(0) kills at once.
    type: float
    default: 10
notes:
  - Items are independent, one item's options never refer to another container. Containers that
    must start in a given order belong in separate tasks.
  - M(oci.runtime.container) with O(oci.runtime.container#module:labels) replaces the labels
    exactly, so it drops C(oci.runtime.managed-by) unless it is given; such a container is then no
    longer pruned, until this module converges it again.
seealso:
  - module: oci.runtime.bundle
  - module: oci.runtime.container
  - module: oci.runtime.resource_update
  - module: oci.runtime.process
"""

EXAMPLES = r"""
- name: Converge this host's containers, removing the ones no longer declared
  oci.runtime.containers:
    state_dir: /run/oci-runtime
    prune: true
    containers:
      - name: web
        bundle: /srv/bundles/web
        labels:
          app: web
        resources:
          memory: 256m
          pids_limit: 128
        processes:
          - id: warm-cache
            args: [/app/bin/warm-cache]
            timeout: 120
      - name: worker
        bundle: /srv/bundles/worker
      - name: api
        # Build (or update) its bundle first; the container's bundle is build.path.
        build:
          path: /srv/bundles/api
          image: /srv/images/api
          image_ref: "2.1"
          env:
            LISTEN: ":8080"
      - name: batch
        bundle: /srv/bundles/batch
        state: stopped
  register: converged

- name: Show what changed
  ansible.builtin.debug:
    msg: "{{ converged.containers | selectattr('changed') | map(attribute='name') | list }}"

- name: Prune containers whose process exits on SIGINT, killing what is left after 3 seconds
  oci.runtime.containers:
    prune: true
    prune_stop_signal: SIGINT
    prune_stop_timeout: 3
    containers:
      - name: web
        bundle: /srv/bundles/web

- name: Two sets of containers in one state_dir, each pruned on its own
  oci.runtime.containers:
    managed_by: monitoring
    prune: true
    containers:
      - name: node-exporter
        bundle: /srv/bundles/node-exporter
"""

RETURN = r"""
containers:
  description:
    - One result per item of O(containers), in the same order, shaped like the result of
      M(oci.runtime.container), plus the item's name, its limits and its processes.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The item's container name.
      type: str
      sample: web
    changed:
      description: Whether anything of this item changed (bundle, container, limits or processes).
      type: bool
      sample: true
    bundle:
      description:
        - The result of M(oci.runtime.bundle) for the item's O(containers[].build) (C(path),
          C(config_digest), C(rootfs_digest), C(changed), C(actions), and C(image_digest) for an
          image), as predicted in check mode.
      type: dict
      returned: when the item has build and its state is not absent
      sample: {path: /srv/bundles/api, changed: false, actions: [],
               config_digest: "sha256:8a266d93a7d16fce82f587d41e31013244b46f31b5895ca03bc173b31602bafd",
               rootfs_digest: "sha256:1c35c441208254cb7c3844ba95a96485388cef9ccc0646d562c7fc026e04c807"}
    container:
      description:
        - The container as it is after the task, as RV(oci.runtime.container#module:container)
          (with C(oom_killed)). Empty when absent.
      type: dict
      sample: {id: web, status: running, pid: 4242, labels: {app: web, oci.runtime.managed-by: containers}}
    actions:
      description:
        - "What was done (or would be in check mode), in order: C(bundle: <action>) for the
          bundle's actions, the container's actions, then
          C(update resources: <fields>), then C(process <id>: <action>)."
      type: list
      elements: str
      sample: [register, create, start, "update resources: memory", "process warm-cache: start"]
    resources:
      description:
        - The result of M(oci.runtime.resource_update) for the item's limits (in check mode, for a
          container that does not run yet, only C(changed), C(changed_fields) and C(predicted)).
      type: dict
      returned: when the item has resources and its state is running or paused
    processes:
      description:
        - The result of M(oci.runtime.process) for each of the item's processes, with its C(id).
      type: list
      elements: dict
      returned: when the item has processes and its state is running
    restarted_after_oom_kill:
      description:
        - True when the item's container was started again after the kernel's OOM killer had
          ended it; a warning says so too.
      type: bool
      returned: when the item's container was restarted after an OOM kill
      version_added: 0.3.0
    diff:
      description: Before and after of the container, as in diff mode.
      type: dict
      returned: when the container changed
    failed:
      description: Whether this item failed.
      type: bool
      returned: when the item failed
    msg:
      description: Why it failed, prefixed with the container name.
      type: str
      returned: when the item failed
pruned:
  description: Names of the containers removed by O(prune) (or that would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: [old-web]
elapsed:
  description: Seconds the module spent converging.
  returned: always
  type: float
  sample: 0.42
"""

from ansible_collections.oci.runtime.plugins.module_utils._module.common import run_module
from ansible_collections.oci.runtime.plugins.module_utils._module.containers import (
    CONTAINERS_OPTIONS,
    ContainersConverger,
)


def main():
    run_module(ContainersConverger, CONTAINERS_OPTIONS)


if __name__ == "__main__":
    main()
