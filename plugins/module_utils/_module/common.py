# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every oci.runtime module shares: the common options and how a runtime is built from them."""

from __future__ import annotations

from ansible_collections.oci.runtime.plugins.module_utils._runtime.layout import ContainerLock
from ansible_collections.oci.runtime.plugins.module_utils._runtime.oci import OciRuntime

DEFAULT_STATE_DIR = "/run/oci-runtime"
DEFAULT_RUNTIME = "runc"

COMMON_ARGUMENT_SPEC = dict(
    state_dir=dict(type="path", default=DEFAULT_STATE_DIR),
    runtime=dict(type="str"),
    runtime_root=dict(type="path"),
)


def run_locked(layout, container_id, check_mode, converge):
    """Run ``converge()`` under the container's lock. Check mode touches nothing, not even the
    state dir, so it takes no lock (it only reads)."""
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
