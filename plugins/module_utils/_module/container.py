# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Converging one container: compare what the task declares with what is, plan, then act.

The option table says, for each option that describes the container, where its current value is
recorded and whether a difference is applied in place (labels) or needs a recreate (everything
that shapes the running process). Nothing here calls ``fail_json``: core errors propagate to the
module's ``main()``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, overload

from ansible_collections.oci.runtime.plugins.module_utils._runtime import container as core
from ansible_collections.oci.runtime.plugins.module_utils._runtime import layout as L
from ansible_collections.oci.runtime.plugins.module_utils._runtime.bundle import load_bundle
from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import BundleError
from ansible_collections.oci.runtime.plugins.module_utils._runtime.record import check_labels
from ansible_collections.oci.runtime.plugins.module_utils._module.actions import ActionLog
from ansible_collections.oci.runtime.plugins.module_utils._module.common import (
    DEFAULT_RUNTIME,
    build_runtime,
    check_seconds,
    run_locked,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any, Tuple

    from ansible_collections.oci.runtime.plugins.module_utils._runtime.bundle import BundleConfig
    from ansible_collections.oci.runtime.plugins.module_utils._runtime.oci import OciRuntime
    from ansible_collections.oci.runtime.plugins.module_utils._runtime.record import ContainerRecord

    # (option name, how, before, after)
    Difference = Tuple[str, str, Any, Any]

RECREATE = "recreate"
UPDATE = "update"

# The verbs of a converge that makes a new container (nothing to read its live state from before).
CREATING = ("register", "recreate", "create")

STATES = ("running", "paused", "stopped", "absent")

# The container module's own options (the common ones come from common.argument_spec); the plural
# module takes the same ones for each item of its ``containers`` list.
CONTAINER_OPTIONS: dict[str, dict[str, Any]] = dict(
    name=dict(type="str", required=True),
    bundle=dict(type="path"),
    state=dict(type="str", choices=list(STATES), default="running"),
    runtime_args=dict(type="list", elements="str"),
    labels=dict(type="dict"),
    stdin=dict(type="path"),
    stdout=dict(type="path"),
    stderr=dict(type="path"),
    no_pivot_root=dict(type="bool"),
    start_timeout=dict(type="float", default=30),
    stop_timeout=dict(type="float", default=10),
    stop_signal=dict(type="str", default="SIGTERM"),
    force_recreate=dict(type="bool", default=False),
)


class Option(object):
    """One comparable property: how to read it from the task; its current value is the
    ContainerRecord attribute of the same name."""

    def __init__(self, name: str, how: str,
                 desired: Callable[[Mapping[str, Any]], Any] | None = None) -> None:
        self.name = name
        self.how = how
        self._desired = desired or (lambda params: params.get(name))

    def desired(self, params: Mapping[str, Any]) -> Any:
        return self._desired(params)

    def current(self, record: ContainerRecord) -> Any:
        return getattr(record, self.name)


LABELS = Option("labels", UPDATE,
                desired=lambda p: None if p.get("labels") is None else check_labels(p["labels"]))


def _given(name: str,
           convert: Callable[[Any], Any] | None = None) -> Callable[[Mapping[str, Any]], Any]:
    """The task's value of an option, or None when the task leaves it out (then not compared:
    an existing container keeps what it was created with)."""
    def desired(params: Mapping[str, Any]) -> Any:
        value = params.get(name)
        if value is None or convert is None:
            return value
        return convert(value)
    return desired


OPTIONS = (
    Option("bundle", RECREATE, desired=_given("bundle", os.path.normpath)),
    Option("runtime", RECREATE, desired=_given("runtime")),
    Option("runtime_root", RECREATE, desired=_given("runtime_root", os.path.normpath)),
    Option("runtime_args", RECREATE, desired=_given("runtime_args", list)),
    Option("stdin", RECREATE, desired=_given("stdin")),
    Option("stdout", RECREATE, desired=_given("stdout")),
    Option("stderr", RECREATE, desired=_given("stderr")),
    Option("no_pivot_root", RECREATE, desired=_given("no_pivot_root", bool)),
    LABELS,
)

# What diff mode shows of a container.
DIFF_KEYS = ("status", "bundle", "config_digest", "labels", "runtime")


def validate_params(params: Mapping[str, Any]) -> None:
    """Raise a core error for input that cannot be right, before anything is touched."""
    L.validate_id(params["name"], "container name")
    for key in ("stdin", "stdout", "stderr"):
        if params.get(key) and not os.path.isabs(params[key]):
            raise BundleError("%s must be an absolute path, got %r" % (key, params[key]))
    check_labels(params.get("labels"))
    core.parse_signal(params["stop_signal"])
    for key in ("start_timeout", "stop_timeout"):
        check_seconds(key, params[key])


def _stdio(params: Mapping[str, Any]) -> dict[str, str]:
    return {key: params.get(key) or "" for key in ("stdin", "stdout", "stderr")}


class ContainerConverger(object):
    """Converges one container to the task's declaration; ``run()`` returns the module result.

    ``extra_labels`` (used by the plural module for its managed-by label) are labels the container
    must carry on top of the task's: with ``labels`` given, the recorded labels must be exactly
    both; with ``labels`` left out, the recorded labels are kept and the extra ones added.

    ``bundle_config`` (a BundleConfig for the task's ``bundle``; used by the plural module in check
    mode, for a bundle it would build or change first) stands in for the bundle on disk.
    """

    def __init__(self, params: Mapping[str, Any], check_mode: bool = False,
                 extra_labels: Mapping[str, object] | None = None,
                 bundle_config: BundleConfig | None = None) -> None:
        validate_params(params)
        self.params = params
        self.check_mode = check_mode
        self.extra_labels = check_labels(extra_labels)
        self.name = params["name"]
        self.state = params["state"]
        self.layout = L.Layout(params["state_dir"])
        self.actions = ActionLog(check_mode)
        self.bundle_config: BundleConfig | None = None
        self.given_bundle_config = bundle_config
        # a recreate keeps the recorded labels unless the task gives some
        self.kept_labels: dict[str, str] = {}
        self._before_labels: dict[str, str] = {}
        self._runtime: OciRuntime | None = None

    @property
    def runtime(self) -> OciRuntime:
        """The runtime the task asks for; built (and its binary checked) only when needed."""
        return self._require_runtime()

    def _require_runtime(self) -> OciRuntime:
        if self._runtime is None:
            self._runtime = build_runtime(self.params)
        return self._runtime

    @overload
    def run(self) -> dict[str, Any]:
        ...

    @overload
    def run(self, only_if: Callable[[core.Container | None], bool]) -> dict[str, Any] | None:
        ...

    def run(self, only_if: Callable[[core.Container | None], bool] | None = None
            ) -> dict[str, Any] | None:
        """Converge and return the module result. ``only_if(container)`` (the recorded Container
        or None), asked under the container's lock, can veto the converge: run() then returns
        None and does nothing."""
        return run_locked(self.layout, self.name, self.check_mode,
                          lambda: self._converge(only_if))

    def wanted_labels(self, current: Mapping[str, str]) -> dict[str, str] | None:
        """The labels the container must end up with, given the ``current`` ones (the record's,
        or those a recreate keeps); None when the task does not declare labels at all."""
        labels = LABELS.desired(self.params)
        if not self.extra_labels:
            return labels
        labels = dict(current if labels is None else labels)
        labels.update(self.extra_labels)
        return labels

    # --- compare ------------------------------------------------------------------------------

    def differences(self, container: core.Container,
                    bundle_config: BundleConfig | None) -> list[Difference]:
        """[(option name, how, before, after)] for the options that differ."""
        found: list[Difference] = []
        record = container.record
        for option in OPTIONS:
            if option is LABELS:
                wanted = self.wanted_labels(option.current(record))
            else:
                wanted = option.desired(self.params)
            if wanted is None:
                continue  # not declared: whatever is recorded is fine
            have = option.current(record)
            if wanted != have:
                found.append((option.name, option.how, have, wanted))
        if bundle_config is not None and bundle_config.digest != record.config_digest:
            found.append(("config_digest", RECREATE, record.config_digest, bundle_config.digest))
        if self.params.get("force_recreate"):
            found.append(("force_recreate", RECREATE, False, True))
        return found

    # --- converge -----------------------------------------------------------------------------

    def _converge(self, only_if: Callable[[core.Container | None], bool] | None = None
                  ) -> dict[str, Any] | None:
        container = core.Container.load(self.layout, self.name)
        if container is None and only_if is None and not self.check_mode:
            container = self._adopt()
        if only_if is not None and not only_if(container):
            return None
        before = self._view(container)
        self._before_labels = dict(before.get("labels") or {})
        if self.state == "absent":
            if container is not None:
                self._remove(container, before["status"])
            after = {"status": "absent"}
            return self._result(before, after, container=None)

        bundle_config = self.bundle_config = self._bundle_config(container)
        updates: list[Difference] = []
        if container is not None:
            differences = self.differences(container, bundle_config)
            recreate = [d for d in differences if d[1] == RECREATE]
            updates = [d for d in differences if d[1] == UPDATE]
            if recreate:
                if bundle_config is None:
                    load_bundle(container.record.bundle)  # raises: say what is missing
                self._require_runtime()  # a missing binary fails here, before the removal
                self.kept_labels = container.record.labels
                self.actions.note("recreate", why="because " + ", ".join(d[0] for d in recreate)
                                  + " changed")
                self._remove(container, before["status"])
                container, status = None, "absent"
                updates = []
            else:
                status = before["status"]
        else:
            status = "absent"

        target: core.Container | _PlannedContainer  # planned: what check mode would register
        if container is None:
            target = self._register(bundle_config)
            status = "stopped"
            if self.state == "stopped":
                return self._finish(before, target, predicted_status="stopped")
        else:
            target = container
            if updates:
                self._update(container, updates)

        predicted = self._move(target, status)
        return self._finish(before, target, predicted)

    def _move(self, container: core.Container | _PlannedContainer, status: str) -> str:
        """Actions from ``status`` to the declared state; returns the status it predicts."""
        want = self.state
        if want == "stopped":
            if status != "stopped":
                self.actions.act("stop", container.stop, self.params["stop_signal"],
                                 self.params["stop_timeout"])
            return "stopped"
        if status == "stopped":
            self.actions.act("create", container.create, self.params["start_timeout"])
            status = "created"
        if status == "created":
            self.actions.act("start", container.start)
            status = "running"
        if want == "running" and status == "paused":
            self.actions.act("resume", container.resume)
            status = "running"
        if want == "paused" and status == "running":
            self.actions.act("pause", container.pause)
            status = "paused"
        return status

    def _adopt(self) -> core.Container | None:
        """The container the runtime has under this name when we have no record of it (our state
        dir was wiped while it ran): its records rebuilt from the runtime's state, or None. A stat
        first, so that a new container costs no extra runtime call."""
        if not core.runtime_may_know(self.params.get("runtime") or DEFAULT_RUNTIME,
                                     self.params.get("runtime_root"), self.name):
            return None
        container = core.Container.adopt(self.layout, self.runtime, self.name)
        if container is not None:
            self.actions.note("adopt", why="container %r had no record under %s; rebuilt it from "
                              "the runtime's state (labels and stdio paths are not known)"
                              % (self.name, self.layout.state_dir))
        return container

    def _bundle_config(self, container: core.Container | None) -> BundleConfig | None:
        """The bundle the task means; None when it relies on a recorded bundle that is gone (a
        running container needs no bundle; a create will say what is missing)."""
        bundle = self.params.get("bundle")
        given = self.given_bundle_config
        if given is not None and bundle is not None and os.path.normpath(bundle) == given.bundle:
            return given
        if bundle is not None:
            return load_bundle(bundle)
        if container is None:
            raise BundleError("container %r does not exist yet: bundle is required to create it"
                              % self.name)
        try:
            return load_bundle(container.record.bundle)
        except BundleError:
            return None

    def _register(self, bundle_config: BundleConfig | None) -> core.Container | _PlannedContainer:
        if bundle_config is None:  # _bundle_config raised for a new container without a bundle
            raise BundleError("container %r has no bundle to be created from" % self.name)
        self.actions.note("register", why="record container %r for bundle %s"
                          % (self.name, bundle_config.bundle))
        if self.check_mode:
            return _PlannedContainer()
        labels = self.wanted_labels(self.kept_labels)
        return core.Container.register(
            self.layout, self.runtime, self.name, bundle_config.bundle,
            labels=labels if labels is not None else self.kept_labels, stdio=_stdio(self.params),
            no_pivot_root=bool(self.params.get("no_pivot_root")))

    def _update(self, container: core.Container, updates: list[Difference]) -> None:
        for name, dummy_how, dummy_before, wanted in updates:
            if name == "labels":
                self.actions.act("update", container.set_labels, wanted, target="labels")

    def _remove(self, container: core.Container, status: str) -> None:
        if status not in ("stopped", "absent"):
            self.actions.act("stop", container.stop, self.params["stop_signal"],
                             self.params["stop_timeout"])
        self.actions.act("remove", container.remove)

    # --- result -------------------------------------------------------------------------------

    def _view(self, container: core.Container | None) -> dict[str, Any]:
        if container is None:
            return {"status": "absent"}
        return container.describe()

    def _finish(self, before: dict[str, Any], container: core.Container | _PlannedContainer,
                predicted_status: str) -> dict[str, Any]:
        if not self.actions:
            after = before
        elif self.check_mode or isinstance(container, _PlannedContainer):  # (only in check mode)
            after = dict(before) if before["status"] != "absent" else {
                "pid": None, "shim_pid": None, "exit_status": None, "exit_status_unknown": False,
                "oom_killed": False,
                "created": None, "labels": {}, "runtime": DEFAULT_RUNTIME}
            after.update(self._predicted(predicted_status))
        else:
            after = container.describe()
        return self._result(before, after, container=after)

    def _predicted(self, status: str) -> dict[str, Any]:
        predicted: dict[str, Any] = {"id": self.name, "status": status}
        if self.params.get("runtime"):
            predicted["runtime"] = self.params["runtime"]
        if self.bundle_config is not None:
            predicted.update({"bundle": self.bundle_config.bundle,
                              "config_digest": self.bundle_config.digest})
        labels = self.wanted_labels(self.kept_labels if self.actions.has("recreate")
                                    else self._before_labels)
        if labels is not None:
            predicted["labels"] = labels
        if status in ("running", "paused") and self.actions.has(*CREATING):
            predicted.update({"pid": None, "shim_pid": None, "exit_status": None,
                              "exit_status_unknown": False, "oom_killed": False})
        if status == "stopped":
            predicted.update({"pid": None, "shim_pid": None})
        return predicted

    def _result(self, before: Mapping[str, Any], after: Mapping[str, Any],
                container: Mapping[str, Any] | None) -> dict[str, Any]:
        changed = bool(self.actions)
        result: dict[str, Any] = {
            "changed": changed,
            "actions": self.actions.rendered(),
            "container": container if container and container.get("status") != "absent" else {},
        }
        if changed:
            result["diff"] = {
                "before": {k: before[k] for k in DIFF_KEYS if k in before},
                "after": {k: after[k] for k in DIFF_KEYS if k in after},
            }
        if before.get("oom_killed") and self.actions.has("create"):
            result["restarted_after_oom_kill"] = True
            result["warnings"] = [
                "container %r had been killed by the kernel's OOM killer (exit status %s); it was "
                "started again: raise its memory limit if this repeats"
                % (self.name, before.get("exit_status"))]
        return result


class _PlannedContainer(object):
    """Stands in for a container that check mode would have created; accepts every verb."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None
