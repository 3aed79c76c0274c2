# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Converging a host's whole set of containers in one module run (the ``containers`` module).

First the bundles of the items that have a ``build`` definition are converged (``BundleConverger``),
all of them before any container, as an item may run from a bundle that another item builds. Then
each declared item is converged by the single-container convergers, in this order: the container (``ContainerConverger``,
with the managed-by label added), then its live limits (``ResourceConverger``), then its processes
(``ProcessConverger``). Nothing is compared or planned
here; this module only fans items out to threads, collects one result per item, and prunes.

Items are independent (their names are unique and each takes its own container's lock), so they run
concurrently in a thread pool: the work is waiting for runc, the shim and the kernel, not Python.
A failing item does not stop the others: its error is recorded in its own result, and the caller
fails the task after every item (and the prune) has run.
"""

from __future__ import annotations

import os
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from ansible_collections.oci.runtime.plugins.module_utils._module.actions import Action
from ansible_collections.oci.runtime.plugins.module_utils._module.bundle import (
    BUNDLE_MUTUALLY_EXCLUSIVE,
    BUNDLE_OPTIONS,
    BUNDLE_REQUIRED_BY,
    BUNDLE_SOURCES,
    BundleConverger,
)
from ansible_collections.oci.runtime.plugins.module_utils._module.common import check_seconds
from ansible_collections.oci.runtime.plugins.module_utils._module.container import (
    CONTAINER_OPTIONS,
    CREATING,
    ContainerConverger,
)
from ansible_collections.oci.runtime.plugins.module_utils._module.process import (
    PROCESS_OPTIONS,
    ProcessConverger,
    ProcessFailedError,
)
from ansible_collections.oci.runtime.plugins.module_utils._module.resource_update import (
    RESOURCE_OPTIONS,
    ResourceConverger,
)
from ansible_collections.oci.runtime.plugins.module_utils._runtime import container as core
from ansible_collections.oci.runtime.plugins.module_utils._runtime import layout as L
from ansible_collections.oci.runtime.plugins.module_utils._runtime.bundle import BundleConfig
from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import RuntimeCoreError
from ansible_collections.oci.runtime.plugins.module_utils._runtime.record import ContainerRecord

if TYPE_CHECKING:
    from collections.abc import Callable, Container, Iterable, Mapping, Sequence
    from typing import Any, TypeVar

    T = TypeVar("T")
    R = TypeVar("R")

MANAGED_LABEL = "oci.runtime.managed-by"
DEFAULT_MANAGED_BY = "containers"
DEFAULT_CONCURRENCY = 8

# Per-task options that every item inherits unless it sets its own (state_dir: per task only).
INHERITED = ("runtime", "runtime_root")


def _without(options: Mapping[str, Any], name: str) -> dict[str, Any]:
    return {key: value for key, value in options.items() if key != name}


# An item's ``build``: the bundle module's options (but ``state``), with ``path`` defaulting to the
# item's ``bundle`` (and the item's ``bundle`` to it); the bundle module's rules apply inside it.
BUILD_OPTIONS: dict[str, dict[str, Any]] = dict(BUNDLE_OPTIONS, path=dict(type="path"))

ITEM_OPTIONS: dict[str, dict[str, Any]] = dict(CONTAINER_OPTIONS)
ITEM_OPTIONS.update(
    build=dict(type="dict", options=BUILD_OPTIONS,
               mutually_exclusive=BUNDLE_MUTUALLY_EXCLUSIVE,
               required_one_of=[BUNDLE_SOURCES],
               required_by=BUNDLE_REQUIRED_BY),
    runtime=dict(type="str"),
    runtime_root=dict(type="path"),
    resources=dict(type="dict", options=_without(RESOURCE_OPTIONS, "container")),
    processes=dict(type="list", elements="dict", options=_without(PROCESS_OPTIONS, "container")),
)

CONTAINERS_OPTIONS: dict[str, dict[str, Any]] = dict(
    containers=dict(type="list", elements="dict", required=True, options=ITEM_OPTIONS),
    prune=dict(type="bool", default=False),
    managed_by=dict(type="str", default=DEFAULT_MANAGED_BY),
    concurrency=dict(type="int", default=DEFAULT_CONCURRENCY),
    # How pruned containers are stopped: the container module's stop_signal and stop_timeout.
    prune_stop_signal=dict(CONTAINER_OPTIONS["stop_signal"]),
    prune_stop_timeout=dict(CONTAINER_OPTIONS["stop_timeout"]),
)

# Item keys that are not the container module's (each goes to its own converger).
_NOT_CONTAINER = ("build", "resources", "processes")


class DeclarationError(ValueError):
    """The declaration as a whole cannot be right (duplicate names, bad per-task options)."""


class BuildFailedError(ValueError):
    """The item's bundle could not be built (the item fails; its container is left alone)."""


def _defaults_of(options: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    return {key: spec.get("default") for key, spec in options.items()}


def check_declaration(params: Mapping[str, Any]) -> None:
    """Raise DeclarationError for what makes the whole declaration wrong, before anything runs."""
    if params.get("concurrency") is not None and params["concurrency"] < 1:
        raise DeclarationError("concurrency must be 1 or more, got %s" % params["concurrency"])
    managed_by = params.get("managed_by")
    if not managed_by:
        raise DeclarationError("managed_by must be a non-empty string")
    _check_prune_stop(params)
    seen, duplicates = set(), []
    for item in params["containers"]:
        name = item.get("name")
        if name in seen and name not in duplicates:
            duplicates.append(name)
        seen.add(name)
    if duplicates:
        raise DeclarationError("container names must be unique in one task; declared more than "
                               "once: %s" % ", ".join(str(n) for n in duplicates))


def _check_prune_stop(params: Mapping[str, Any]) -> None:
    signal = params.get("prune_stop_signal")
    if signal is not None:
        try:
            core.parse_signal(signal)
        except ValueError as exc:
            raise DeclarationError("prune_stop_signal: %s" % exc)
    try:
        check_seconds("prune_stop_timeout", params.get("prune_stop_timeout"))
    except ValueError as exc:
        raise DeclarationError(str(exc))


def _build_path(item: Mapping[str, Any]) -> str | None:
    """The bundle path an item's ``build`` writes (None without one); normalised when absolute."""
    path = (item.get("build") or {}).get("path") or item.get("bundle")
    return os.path.normpath(path) if path and os.path.isabs(path) else path


def plan_builds(items: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """{bundle path: BundleConverger params} for the items that build a bundle (not those with
    state absent). Items may share a bundle path only with the same definition: it is built once.
    Raises DeclarationError for one path defined differently by two items."""
    plans: dict[str, dict[str, Any]] = {}
    owners: dict[str, Any] = {}
    for item in items:
        if not item.get("build") or item.get("state") == "absent":
            continue
        path = _build_path(item)
        if not path:
            continue  # the item fails on its own
        params = _defaults_of(BUILD_OPTIONS)
        params.update(item["build"])
        params.update({"path": path, "state": "present"})
        if path in plans and plans[path] != params:
            raise DeclarationError("items %s and %s build the same bundle %s differently"
                                   % (owners[path], item.get("name"), path))
        plans[path] = params
        owners.setdefault(path, item.get("name"))
    return plans


def build_bundle(params: Mapping[str, Any], check_mode: bool = False) -> dict[str, Any]:
    """Converge one bundle: {"result": the bundle module's result, "config": in check mode the
    predicted BundleConfig of a bundle that would change, else None} or {"error": msg}."""
    try:
        converger = BundleConverger(params, check_mode=check_mode)  # checks the input
        result = converger.run()
    except (RuntimeCoreError, ValueError) as exc:
        return {"error": getattr(exc, "msg", None) or str(exc)}
    except Exception as exc:  # pylint: disable=broad-except
        return {"error": "unexpected error: %s: %s" % (type(exc).__name__, exc),
                "exception": traceback.format_exc()}
    result.pop("diff", None)
    config = None
    if check_mode and result["changed"] and converger.config is not None:
        config = BundleConfig(converger.path, converger.config, result["config_digest"])
    return {"result": result, "config": config}


class ItemConverger(object):
    """One declared item: its container, then its limits, then its processes."""

    def __init__(self, item: Mapping[str, Any], task: Mapping[str, Any], check_mode: bool = False,
                 built: Mapping[str, dict[str, Any]] | None = None) -> None:
        self.item = item
        self.built = built or {}  # {bundle path: what build_bundles() made of it}
        self.name = str(item.get("name"))  # required: AnsibleModule checked it
        self.check_mode = check_mode
        self.state_dir = task["state_dir"]
        self.managed_labels = {MANAGED_LABEL: task["managed_by"]}
        self.params: dict[str, Any] = {key: value for key, value in item.items()
                                       if key not in _NOT_CONTAINER}
        self.params["state_dir"] = self.state_dir
        for key in INHERITED:
            if self.params.get(key) is None:
                self.params[key] = task.get(key)
        self.build = item.get("build")
        if self.build and self.params.get("bundle") is None:
            self.params["bundle"] = self.build.get("path")
        self.result: dict[str, Any] = {"name": self.name, "changed": False, "actions": [],
                                       "container": {}}

    def run(self) -> dict[str, Any]:
        try:
            self._run()
        except (RuntimeCoreError, ValueError) as exc:
            self._fail(getattr(exc, "msg", None) or str(exc))
        except Exception as exc:  # pylint: disable=broad-except
            # A bug must not take the other items' results with it.
            self._fail("unexpected error: %s: %s" % (type(exc).__name__, exc),
                       exception=traceback.format_exc())
        return self.result

    def _fail(self, msg: str, **extra: object) -> None:
        self.result["failed"] = True
        self.result["msg"] = "%s: %s" % (self.name, msg)
        self.result.update(extra)

    def _run(self) -> None:
        label = self.params.get("labels") or {}
        if MANAGED_LABEL in label and str(label[MANAGED_LABEL]) != self.managed_labels[MANAGED_LABEL]:
            raise ValueError("label %s is set by this module (managed_by); it cannot be %r here"
                             % (MANAGED_LABEL, label[MANAGED_LABEL]))
        state = self.params["state"]
        if self.build and state != "absent":
            self._bundle()
        converger = ContainerConverger(self.params, check_mode=self.check_mode,
                                       extra_labels=self.managed_labels,
                                       bundle_config=self._predicted_bundle())
        result = converger.run()
        self.result.update({"changed": self.result["changed"] or result["changed"],
                            "actions": self.result["actions"] + list(result["actions"]),
                            "container": result["container"]})
        if result.get("diff"):
            self.result["diff"] = result["diff"]
        if result.get("restarted_after_oom_kill"):
            self.result["restarted_after_oom_kill"] = True
        for warning in result.pop("warnings", []):
            self.result.setdefault("warnings", []).append("%s: %s" % (self.name, warning))
        # A container that is (re)created in this run: in check mode there is nothing to read its
        # limits and processes from yet, so they are predicted, not compared.
        fresh = converger.actions.has(*CREATING)
        if self.item.get("resources") and state in ("running", "paused"):
            self._resources(fresh)
        if self.item.get("processes") and state == "running":
            self._processes(fresh)

    def _bundle(self) -> None:
        """Take the item's bundle result (built before every container) into the item's result;
        raises BuildFailedError when it could not be built."""
        path = _build_path(self.item)
        if not path:
            raise ValueError("build needs a path: give build.path or the item's bundle")
        built = self.built[path]
        if built.get("error"):
            if built.get("exception"):
                self.result["exception"] = built["exception"]
            raise BuildFailedError(built["error"])
        result = dict(built["result"], actions=list(built["result"]["actions"]))
        for warning in result.pop("warnings", []):
            self.result.setdefault("warnings", []).append("%s: bundle: %s" % (self.name, warning))
        self.result["bundle"] = result
        if result["changed"]:
            self.result["changed"] = True
            self.result["actions"].extend("bundle: " + action for action in result["actions"])

    def _predicted_bundle(self) -> BundleConfig | None:
        """In check mode, the predicted config of a bundle that this task would write first (by
        this item's build or another's), for the container to compare with; else None."""
        bundle = self.params.get("bundle")
        if not self.check_mode or not bundle or not os.path.isabs(bundle):
            return None
        return (self.built.get(os.path.normpath(bundle)) or {}).get("config")

    def _sub_params(self, options: Mapping[str, Mapping[str, Any]],
                    given: Mapping[str, Any] | None) -> dict[str, Any]:
        params = _defaults_of(options)
        params.update(given or {})
        params.update({"container": self.name, "state_dir": self.state_dir,
                       "runtime": self.params.get("runtime"),
                       "runtime_root": self.params.get("runtime_root")})
        return params

    def _resources(self, fresh: bool) -> None:
        params = self._sub_params(RESOURCE_OPTIONS, self.item["resources"])
        converger = ResourceConverger(params, check_mode=self.check_mode)  # checks the input
        result: dict[str, Any]
        if self.check_mode and fresh:
            fields = sorted(converger.request)
            result = {"changed": bool(fields), "changed_fields": fields, "predicted": True}
        else:
            result = converger.run()
        self.result["resources"] = result
        for warning in result.pop("warnings", []):
            self.result.setdefault("warnings", []).append("%s: %s" % (self.name, warning))
        if result["changed"]:
            self.result["changed"] = True
            self.result["actions"].append(
                str(Action("update", "resources", ", ".join(result["changed_fields"]))))

    def _processes(self, fresh: bool) -> None:
        results: list[dict[str, Any]] = []
        self.result["processes"] = results
        started = False
        for given in self.item["processes"]:
            params = self._sub_params(PROCESS_OPTIONS, given)
            converger = ProcessConverger(params, check_mode=self.check_mode)  # checks the input
            if self.check_mode and fresh:
                actions = [str(Action("start"))] if params["state"] != "absent" else []
                result = {"id": params["id"], "changed": bool(actions), "actions": actions,
                          "status": "running" if actions else "absent", "predicted": True}
            else:
                try:
                    result = converger.run()
                except ProcessFailedError as exc:
                    result = dict(exc.result, id=params["id"], failed=True, msg=exc.msg)
                    results.append(result)
                    self._note_process(result)
                    raise ProcessFailedError("process %r: %s" % (params["id"], exc.msg), result)
                result = dict(result, id=params["id"])
            results.append(result)
            self._note_process(result)
            started = started or (result["changed"] and not self.check_mode)
        if started:
            # The container's view lists its processes: show them as they are now.
            container = core.Container.load(L.Layout(self.state_dir), self.name)
            if container is not None:
                self.result["container"] = container.describe()

    def _note_process(self, result: dict[str, Any]) -> None:
        for warning in result.pop("warnings", []):
            self.result.setdefault("warnings", []).append("%s: %s" % (self.name, warning))
        if result.get("changed"):
            self.result["changed"] = True
            self.result["actions"].extend("process %s: %s" % (result["id"], action)
                                          for action in result.get("actions", []))


class Pruner(object):
    """Removes one undeclared container, if (under its lock) it still carries the managed label."""

    def __init__(self, name: str, task: Mapping[str, Any], check_mode: bool = False) -> None:
        self.name = name
        self.managed_by = task["managed_by"]
        self.params = _defaults_of(CONTAINER_OPTIONS)
        self.params.update({"name": name, "state": "absent", "state_dir": task["state_dir"],
                            "runtime": None, "runtime_root": None,
                            "stop_signal": task["prune_stop_signal"],
                            "stop_timeout": task["prune_stop_timeout"]})
        self.check_mode = check_mode

    def managed(self, container: core.Container | None) -> bool:
        return container is not None and container.record.labels.get(MANAGED_LABEL) == self.managed_by

    def run(self) -> dict[str, Any] | None:
        """The container module's result (with ``name``), or None when it is not ours to prune."""
        try:
            result = ContainerConverger(self.params, check_mode=self.check_mode).run(
                only_if=self.managed)
        except (RuntimeCoreError, ValueError) as exc:
            return {"name": self.name, "changed": False, "failed": True,
                    "msg": "prune %s: %s" % (self.name, getattr(exc, "msg", None) or str(exc))}
        if result is None:
            return None
        result["name"] = self.name
        return result


def _map(func: Callable[[T], R], items: Sequence[T], concurrency: int) -> list[R]:
    """``[func(item) for item in items]``, in order, on up to ``concurrency`` threads."""
    if concurrency <= 1 or len(items) <= 1:
        return [func(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(concurrency, len(items))) as pool:
        return list(pool.map(func, items))


def prune_candidates(state_dir: str, declared: Container[str], managed_by: str) -> list[str]:
    """Recorded containers that are not declared and (by their record, read without a lock)
    carry the managed label; each is checked again under its lock before it is removed."""
    layout = L.Layout(state_dir)
    names = []
    for name in layout.container_ids():
        if name in declared:
            continue
        record = ContainerRecord.read(layout.state_file(name))
        if record is not None and record.labels.get(MANAGED_LABEL) == managed_by:
            names.append(name)
    return names


def _item_diff(result: Mapping[str, Any]) -> dict[str, Any] | None:
    diff = result.get("diff")
    if not diff:
        return None
    header = "container %s" % result["name"]
    return {"before_header": header, "after_header": header,
            "before": diff.get("before", {}), "after": diff.get("after", {})}


def _or_default(params: Mapping[str, Any], key: str) -> Any:
    value = params.get(key)
    return CONTAINERS_OPTIONS[key]["default"] if value is None else value


class ContainersConverger(object):
    """Converges the whole declaration of the ``containers`` module; ``run()`` returns the module
    result (``failed`` and ``msg`` when any item or prune failed; everything else converged all the
    same)."""

    def __init__(self, params: Mapping[str, Any], check_mode: bool = False) -> None:
        check_declaration(params)
        self.params = params
        self.check_mode = check_mode
        self.builds = plan_builds(params["containers"])
        for build in self.builds.values():
            build["image_store"] = params.get("image_store")  # the common option, for store images
        self.task = {"state_dir": params["state_dir"], "runtime": params.get("runtime"),
                     "runtime_root": params.get("runtime_root"), "managed_by": params["managed_by"],
                     "prune_stop_signal": _or_default(params, "prune_stop_signal"),
                     "prune_stop_timeout": _or_default(params, "prune_stop_timeout")}
        self.concurrency = params.get("concurrency") or DEFAULT_CONCURRENCY

    def run(self) -> dict[str, Any]:
        started = time.monotonic()
        params, task, check_mode = self.params, self.task, self.check_mode
        items = params["containers"]

        # Undeclared containers go first: a renamed container's old self must not hold what the new
        # one needs (a port of the host network, a device).
        pruned_results = []
        if params.get("prune"):
            declared = set(item["name"] for item in items)
            candidates = prune_candidates(params["state_dir"], declared, params["managed_by"])
            pruned_results = [r for r in _map(lambda name: Pruner(name, task, check_mode).run(),
                                              candidates, self.concurrency) if r is not None]

        # Every bundle before any container: an item may run from a bundle that another item builds.
        paths = sorted(self.builds)
        built = dict(zip(paths, _map(lambda path: build_bundle(self.builds[path], check_mode),
                                     paths, self.concurrency)))

        results = _map(lambda item: ItemConverger(item, task, check_mode, built).run(), items,
                       self.concurrency)
        result: dict[str, Any] = {
            "changed": any(r["changed"] for r in results + pruned_results),
            "containers": results,
            "pruned": [r["name"] for r in pruned_results if not r.get("failed") and r["changed"]],
            "elapsed": round(time.monotonic() - started, 3),
        }
        diffs = [d for d in (_item_diff(r) for r in pruned_results + results) if d is not None]
        if diffs:
            result["diff"] = diffs
        warnings = [w for r in results for w in r.pop("warnings", [])]
        if warnings:
            result["warnings"] = warnings
        failures = [r for r in results + pruned_results if r.get("failed")]
        if failures:
            result["failed"] = True
            result["msg"] = _failure_message(results, failures)
        return result


def _failure_message(results: list[dict[str, Any]], failures: list[dict[str, Any]]) -> str:
    failed_items = len([r for r in results if r.get("failed")])
    failed_prunes = len(failures) - failed_items
    parts = []
    if failed_items:
        parts.append("%d of %d declared containers failed" % (failed_items, len(results)))
    if failed_prunes:
        parts.append("%d prunes failed" % failed_prunes)
    return "%s (everything else was converged): %s" % (
        ", ".join(parts), "; ".join(r["msg"] for r in failures))
