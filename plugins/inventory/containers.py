# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: containers
short_description: The OCI containers of the controller host as inventory hosts
version_added: 0.1.0
author:
  - oci.runtime developers (@oci-runtime)
description:
  - Lists the containers recorded by M(oci.runtime.container) under one or more state directories
    of the controller host, each as an inventory host named by its container id, ready to be
    reached with the P(oci.runtime.oci#connection) connection plugin (its variables are set).
  - Labels become groups (C(label_<key>_<value>), see O(label_groups)); O(keyed_groups), O(groups)
    and O(compose) work on the host variables below.
  - "Host variables: C(oci_status), C(oci_pid), C(oci_bundle), C(oci_labels), C(oci_runtime),
    C(oci_created), C(oci_state_dir), and the connection's C(ansible_connection)
    (V(oci.runtime.oci)), C(ansible_oci_state_dir), C(ansible_oci_runtime),
    C(ansible_oci_runtime_root) (null for the runtime's default)."
  - Runs on the controller, which must be the container host, usually as root (the state
    directory and the runtime's root are root's). Asks the runtime C(state) once per container.
  - The configuration file name must end with C(oci_containers.yml) or C(oci_containers.yaml).
extends_documentation_fragment:
  - constructed
options:
  plugin:
    description: The name of this plugin; always V(oci.runtime.containers).
    type: str
    required: true
    choices: [oci.runtime.containers]
  state_dirs:
    description:
      - The collection's state directories to list, as O(oci.runtime.container#module:state_dir) of
        the modules. A directory that does not exist has no containers.
      - An id found in two of them is listed once, from the first, with a warning.
    type: list
    elements: path
    default: [/run/oci-runtime]
  statuses:
    description:
      - Only list containers with one of these statuses. Only V(running) containers can run tasks.
    type: list
    elements: str
    choices: [running, paused, created, stopped]
    default: [running]
  label_groups:
    description:
      - Add each container to a group per label, C(label_<key>_<value>) (characters that are not
        valid in group names become V(_)).
    type: bool
    default: true
notes:
  - Containers need a Python for most modules; set C(ansible_python_interpreter) with O(compose)
    or in group variables. M(ansible.builtin.raw) needs only C(/bin/sh).
seealso:
  - plugin: oci.runtime.oci
    plugin_type: connection
  - module: oci.runtime.container_info
"""

EXAMPLES = r"""
# my.oci_containers.yml: every running container under the default state dir, grouped by label
plugin: oci.runtime.containers

# apps.oci_containers.yml: running and paused containers of two state dirs, a group per status,
# a group of the containers labelled role=web, and the Python that modules use in them
plugin: oci.runtime.containers
state_dirs:
  - /run/oci-runtime
  - /run/my-app
statuses: [running, paused]
keyed_groups:
  - key: oci_status
    prefix: status
groups:
  web: oci_labels.role | default('') == 'web'
compose:
  ansible_python_interpreter: "'/usr/bin/python3'"
"""

from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Constructable
from ansible.utils.display import Display

from ansible_collections.oci.runtime.plugins.module_utils._runtime import container as core
from ansible_collections.oci.runtime.plugins.module_utils._runtime import layout as L
from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import RuntimeCoreError

display = Display()

CONNECTION = "oci.runtime.oci"
FILE_SUFFIXES = ("oci_containers.yml", "oci_containers.yaml")


def host_vars(state_dir, record, status, pid):
    """The host variables of one container (``record``: its ContainerRecord): what it is, and how
    the connection plugin reaches it."""
    return {
        "oci_status": status,
        "oci_pid": pid,
        "oci_bundle": record.bundle,
        "oci_labels": dict(record.labels),
        "oci_runtime": record.runtime,
        "oci_created": record.created,
        "oci_state_dir": state_dir,
        "ansible_connection": CONNECTION,
        "ansible_oci_state_dir": state_dir,
        "ansible_oci_runtime": record.runtime,
        "ansible_oci_runtime_root": record.runtime_root,
    }


def label_group_names(labels):
    """Raw (unsanitised) group names of a container's labels, in key order."""
    return ["label_%s_%s" % (key, value) for key, value in sorted(labels.items())]


class InventoryModule(BaseInventoryPlugin, Constructable):

    NAME = "oci.runtime.containers"

    def verify_file(self, path):
        return super(InventoryModule, self).verify_file(path) and path.endswith(FILE_SUFFIXES)

    def parse(self, inventory, loader, path, cache=True):
        super(InventoryModule, self).parse(inventory, loader, path, cache)
        self._read_config_data(path)
        statuses = set(self.get_option("statuses"))
        seen = {}
        for state_dir in self.get_option("state_dirs"):
            try:
                for container_id, container_vars in self.containers(state_dir, statuses):
                    if container_id in seen:
                        display.warning("container %s is recorded under both %s and %s: listed from %s"
                                        % (container_id, seen[container_id], state_dir,
                                           seen[container_id]))
                        continue
                    seen[container_id] = state_dir
                    self.add_container(container_id, container_vars)
            except RuntimeCoreError as exc:
                raise AnsibleParserError("oci.runtime.containers: %s" % exc.msg)

    def containers(self, state_dir, statuses):
        """(id, host vars) of the containers under ``state_dir`` whose status is wanted."""
        layout = L.Layout(state_dir)
        for container_id in layout.container_ids():
            try:
                container = core.Container.load(layout, container_id)
                if container is None:
                    continue  # removed while we listed
                status = container.status()
            except RuntimeCoreError as exc:
                # One broken record or a runtime that is gone must not hide the other containers.
                display.warning("oci.runtime.containers: container %s under %s is left out: %s"
                                % (container_id, layout.state_dir, exc.msg))
                continue
            if status not in statuses:
                continue
            pid = container.init.pid if status != core.STOPPED else None
            yield container_id, host_vars(layout.state_dir, container.record, status, pid)

    def add_container(self, container_id, container_vars):
        strict = self.get_option("strict")
        self.inventory.add_host(container_id)
        for key, value in container_vars.items():
            self.inventory.set_variable(container_id, key, value)
        if self.get_option("label_groups"):
            for raw_name in label_group_names(container_vars["oci_labels"]):
                group = self.inventory.add_group(self._sanitize_group_name(raw_name))
                self.inventory.add_child(group, container_id)
        self._set_composite_vars(self.get_option("compose"), container_vars, container_id, strict)
        self._add_host_to_composed_groups(self.get_option("groups"), container_vars, container_id, strict)
        self._add_host_to_keyed_groups(self.get_option("keyed_groups"), container_vars, container_id, strict)
