#!/usr/bin/python
# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: checkpoint
short_description: CRIU checkpoints of OCI containers, and restore from them
version_added: 0.1.0
description:
  - Creates a named CRIU checkpoint of a running container through the runtime
    (C(runc checkpoint)), removes it, or restores the container from it (C(runc restore --detach))
    under a shim, so that its exit status is tracked like that of a started container.
  - Checkpoints are kept in O(checkpoint_dir), which survives reboots. A checkpoint is never
    overwritten unless O(force) is set.
  - Restoring needs the container's bundle (the root filesystem is not in the checkpoint). To move
    a container to another host, copy the checkpoint directory and the bundle, then restore there
    with O(bundle); see C(playbooks/migrate.yml).
author:
  - oci.runtime developers (@oci-runtime)
extends_documentation_fragment:
  - oci.runtime.common
  - oci.runtime.common.attributes
options:
  container:
    description:
      - Name (id) of the container, as managed by M(oci.runtime.container) with the same O(state_dir).
    type: str
    required: true
  name:
    description:
      - Name of the checkpoint. Same rules as container ids.
    type: str
    required: true
  state:
    description:
      - V(present) checkpoints the running (or paused) container unless a checkpoint of that name
        exists.
      - V(absent) removes that checkpoint only.
      - V(restored) restores the container from the checkpoint, unless the container already runs.
        A failed restore leaves the checkpoint as it was and the container stopped.
    type: str
    choices: [present, absent, restored]
    default: present
  checkpoint_dir:
    description:
      - Directory holding this container's checkpoints, one subdirectory per O(name).
      - Default C(/var/lib/oci-runtime/checkpoints/<container>).
    type: path
  exit:
    description:
      - Stop the container once the checkpoint is written (for migration). By default it keeps
        running.
    type: bool
    default: false
  tcp:
    description: Checkpoint established TCP connections (C(--tcp-established)).
    type: bool
    default: false
  unix_sockets:
    description: Checkpoint external unix sockets (C(--ext-unix-sk)).
    type: bool
    default: false
  shell:
    description: Allow checkpointing shell jobs, processes attached to a terminal (C(--shell-job)).
    type: bool
    default: false
  empty_ns:
    description:
      - Namespaces CRIU should not checkpoint (C(--empty-ns)), for example V(network). Not with crun.
    type: list
    elements: str
    default: []
  bundle:
    description:
      - Bundle to restore with, for a container this host has never run. Default the bundle
        recorded in the checkpoint.
    type: path
  criu_path:
    description:
      - Path of the C(criu) binary. Default C(criu) from C(/usr/local/sbin), E(PATH) or the system
        directories. CRIU 4.0 or newer that passes C(criu check) is needed.
    type: path
  force:
    description: With O(state=present), replace an existing checkpoint of the same name.
    type: bool
    default: false
  start_timeout:
    description: Seconds to wait for the runtime to restore the container.
    type: float
    default: 60
notes:
  - The container's standard input, output and error are pipes owned by its shim, which CRIU can
    checkpoint and restore; output written after a restore goes to the same log files.
  - Checkpoint and restore options of the checkpoint (O(tcp), O(unix_sockets), O(shell),
    O(empty_ns)) are recorded with it and used again on restore.
seealso:
  - module: oci.runtime.container
  - name: CRIU
    description: Checkpoint/Restore In Userspace.
    link: https://criu.org/
"""

EXAMPLES = r"""
- name: Take a warm snapshot of a running container
  oci.runtime.checkpoint:
    container: web
    name: before-upgrade

- name: Roll back to it later
  block:
    - name: Stop the container
      oci.runtime.container:
        name: web
        state: stopped
    - name: Restore it from the snapshot
      oci.runtime.checkpoint:
        container: web
        name: before-upgrade
        state: restored

- name: Freeze a container to disk and stop it
  oci.runtime.checkpoint:
    container: batch
    name: night
    exit: true

- name: Drop an old checkpoint
  oci.runtime.checkpoint:
    container: web
    name: before-upgrade
    state: absent
"""

RETURN = r"""
checkpoint:
  description: The named checkpoint after the task; empty when absent.
  returned: always
  type: dict
  contains:
    name:
      description: The checkpoint name.
      type: str
      sample: before-upgrade
    path:
      description: Directory holding the CRIU images and C(checkpoint.json).
      type: str
      sample: /var/lib/oci-runtime/checkpoints/web/before-upgrade
    created:
      description: When it was taken, UTC, ISO 8601.
      type: str
      sample: "2026-11-30T07:00:00Z"
    size_bytes:
      description: Size of the checkpoint on disk.
      type: int
      sample: 1048576
    options:
      description: The options it was taken with (tcp, unix_sockets, shell, exit, empty_ns).
      type: dict
      sample: {tcp: false, unix_sockets: false, shell: false, exit: false, empty_ns: []}
checkpoints:
  description: All checkpoints of this container in O(checkpoint_dir), each shaped like RV(checkpoint).
  returned: always
  type: list
  elements: dict
container:
  description: The container after the task, as M(oci.runtime.container) returns it.
  returned: when the container exists (not in check mode)
  type: dict
actions:
  description: What the task did (or would do in check mode).
  returned: always
  type: list
  elements: str
  sample: [checkpoint]
"""

from ansible_collections.oci.runtime.plugins.module_utils._module.checkpoint import (
    CHECKPOINT_OPTIONS,
    CheckpointConverger,
)
from ansible_collections.oci.runtime.plugins.module_utils._module.common import run_module


def main():
    run_module(CheckpointConverger, CHECKPOINT_OPTIONS)


if __name__ == "__main__":
    main()
