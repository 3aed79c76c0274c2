# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every oci.runtime module shares: the common options and how a runtime is built from them."""

from __future__ import annotations

import contextlib
import math
import os

from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import (
    InvalidPidError,
    InvalidValueError,
    StateError,
)
from ansible_collections.oci.runtime.plugins.module_utils._runtime.layout import ContainerLock
from ansible_collections.oci.runtime.plugins.module_utils._runtime.oci import OciRuntime

DEFAULT_STATE_DIR = "/run/oci-runtime"
DEFAULT_RUNTIME = "runc"

COMMON_ARGUMENT_SPEC = dict(
    state_dir=dict(type="path", default=DEFAULT_STATE_DIR),
    runtime=dict(type="str"),
    runtime_root=dict(type="path"),
)


@contextlib.contextmanager
def damaged_records_hint(layout, container_id):
    """A record file of ``container_id`` that cannot be read (truncated, not JSON, not a number)
    becomes a StateError that says how to recover: remove the container's state directory; the
    next run adopts the container from the runtime's state if it still runs (see
    docs/reliability.md)."""
    try:
        yield
    except (StateError, InvalidPidError) as exc:
        path = exc.details.get("path") or ""
        directory = layout.container_dir(container_id)
        if not path.startswith(directory + os.sep):
            raise
        raise StateError(
            "the records of container %r are damaged: %s. To recover, remove %s (rm -r) and run "
            "again: a container the runtime still runs is then adopted from the runtime's state, "
            "otherwise it is created afresh" % (container_id, exc.msg, directory),
            container=container_id, path=path)


def check_seconds(name, value):
    """A timeout must be a finite number of seconds, zero or more (Ansible's float type takes
    'inf' and 'nan'); None (not given) passes."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value < 0:
        raise InvalidValueError("%s must be zero or more seconds, got %r" % (name, value))
    return value


def run_locked(layout, container_id, check_mode, converge):
    """Run ``converge()`` under the container's lock. Check mode touches nothing, not even the
    state dir, so it takes no lock (it only reads)."""
    with damaged_records_hint(layout, container_id):
        if check_mode:
            return converge()
        layout.ensure_state_dir()
        with ContainerLock(layout, container_id):
            return converge()


def argument_spec(**specific):
    spec = dict(COMMON_ARGUMENT_SPEC)
    spec.update(specific)
    return spec


def build_runtime(params, runtime_args=None):
    """The OciRuntime the task asks for (raises RuntimeNotFoundError if the binary is missing)."""
    return OciRuntime(params.get("runtime") or DEFAULT_RUNTIME, root=params.get("runtime_root"),
                      runtime_args=runtime_args if runtime_args is not None
                      else params.get("runtime_args"))
