# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every oci.runtime module shares: the common options and how a runtime is built from them."""

from __future__ import annotations

import contextlib
import math
import os
from typing import TYPE_CHECKING

from ansible_collections.oci.runtime.plugins.module_utils._runtime import container as core
from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import (
    InvalidPidError,
    InvalidValueError,
    NoSuchContainerError,
    RuntimeCoreError,
    StateError,
)
from ansible_collections.oci.runtime.plugins.module_utils._runtime.layout import ContainerLock
from ansible_collections.oci.runtime.plugins.module_utils._runtime.oci import DEFAULT_RUNTIME, OciRuntime

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from typing import Any, Protocol, TypeVar

    from ansible_collections.oci.runtime.plugins.module_utils._runtime.layout import Layout

    T = TypeVar("T")

    class Converger(Protocol):
        """What run_module runs: built as ``ConvergerClass(params, check_mode=...)``."""

        def run(self) -> dict[str, Any]:
            ...

DEFAULT_STATE_DIR = "/run/oci-runtime"
DEFAULT_IMAGE_STORE = "/var/lib/oci-runtime/images"

COMMON_ARGUMENT_SPEC = dict(
    state_dir=dict(type="path", default=DEFAULT_STATE_DIR),
    runtime=dict(type="str"),
    runtime_root=dict(type="path"),
    image_store=dict(type="path", default=DEFAULT_IMAGE_STORE),
)


@contextlib.contextmanager
def damaged_records_hint(layout: Layout, container_id: str) -> Iterator[None]:
    """A record file of ``container_id`` that cannot be read (truncated, not JSON, not a number)
    becomes a StateError that says how to recover: remove the container's state directory; the
    next run adopts the container from the runtime's state if it still runs (see
    docs/reliability.md)."""
    try:
        yield
    except (StateError, InvalidPidError) as exc:
        path = str(exc.details.get("path") or "")
        directory = layout.container_dir(container_id)
        if not path.startswith(directory + os.sep):
            raise
        raise StateError(
            "the records of container %r are damaged: %s. To recover, remove %s (rm -r) and run "
            "again: a container the runtime still runs is then adopted from the runtime's state, "
            "otherwise it is created afresh" % (container_id, exc.msg, directory),
            container=container_id, path=path)


def load_container(layout: Layout, container_id: str, why: str = "") -> core.Container:
    """The recorded container; NoSuchContainerError (saying ``why`` it was needed) when the state
    dir has no record of it."""
    container = core.Container.load(layout, container_id)
    if container is None:
        raise NoSuchContainerError(container_id, layout.state_dir, why)
    return container


def check_seconds(name: str, value: object) -> float | None:
    """A timeout must be a finite number of seconds, zero or more (Ansible's float type takes
    'inf' and 'nan'); None (not given) passes."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value < 0:
        raise InvalidValueError("%s must be zero or more seconds, got %r" % (name, value))
    return value


def run_locked(layout: Layout, container_id: str, check_mode: bool, converge: Callable[[], T]) -> T:
    """Run ``converge()`` under the container's lock. Check mode touches nothing, not even the
    state dir, so it takes no lock (it only reads)."""
    with damaged_records_hint(layout, container_id):
        if check_mode:
            return converge()
        layout.ensure_state_dir()
        with ContainerLock(layout, container_id):
            return converge()


def argument_spec(**specific: Any) -> dict[str, Any]:
    spec = dict(COMMON_ARGUMENT_SPEC)
    spec.update(specific)
    return spec


class TaskFailedError(RuntimeCoreError):
    """The task ran to its end but its outcome fails it (a process that exited non-zero, an item of
    a set that failed): ``msg`` plus the ``result`` to return beside it; ``details`` (such as
    ``rc``) are returned too, like those of any core error."""

    def __init__(self, msg: str, result: Mapping[str, Any], **details: object) -> None:
        super(TaskFailedError, self).__init__(msg, **details)
        self.result = result


# Details of a core error that a failed task returns beside ``msg``, the same for every module.
FAILURE_DETAILS = ("argv", "rc", "stderr", "path", "member", "field", "container")


def failure_details(exc: RuntimeCoreError) -> dict[str, object]:
    return {k: v for k, v in exc.details.items() if k in FAILURE_DETAILS}


def run_module(converger: Callable[..., Converger], options: Mapping[str, Any],
               common_options: bool = True, **module_kwargs: Any) -> None:
    """The whole ``main()`` of a module: build the AnsibleModule from ``options`` (plus the common
    options unless ``common_options`` is false) and ``module_kwargs`` (``mutually_exclusive``,
    ``required_by``...), run ``converger(params, check_mode=...).run()`` and turn its result,
    warnings and errors into ``exit_json`` / ``fail_json``.

    A result may carry ``warnings`` (a list of strings, emitted with ``module.warn``) and ``failed``
    (true fails the task with the rest of the result). A TaskFailedError fails the task with its
    result and details; any other core error and a ValueError fail it with the message and the
    error's FAILURE_DETAILS. Only this function calls ``fail_json``."""
    from ansible.module_utils.basic import AnsibleModule  # only here: the core never needs Ansible

    module = AnsibleModule(
        argument_spec=argument_spec(**options) if common_options else dict(options),
        supports_check_mode=True, **module_kwargs)
    result: dict[str, Any]
    try:
        result = converger(module.params, check_mode=module.check_mode).run()
    except TaskFailedError as exc:
        result = dict(exc.result)
        result.update(failure_details(exc))
        result["failed"] = True
        result["msg"] = exc.msg
    except RuntimeCoreError as exc:
        result = dict(failure_details(exc), failed=True, msg=exc.msg)
    except ValueError as exc:
        result = {"failed": True, "msg": str(exc)}
    for warning in result.pop("warnings", []):
        module.warn(warning)
    if result.pop("failed", False):
        module.fail_json(**result)
    module.exit_json(**result)


def build_runtime(params: Mapping[str, Any], runtime_args: list[str] | None = None) -> OciRuntime:
    """The OciRuntime the task asks for (raises RuntimeNotFoundError if the binary is missing)."""
    return OciRuntime(params.get("runtime") or DEFAULT_RUNTIME, root=params.get("runtime_root"),
                      runtime_args=runtime_args if runtime_args is not None
                      else params.get("runtime_args"))
