# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The plural adapter: managed label on top of the item's labels, declaration checks, per-item
errors that hide nothing, prune candidates and vetoes, order under concurrency, check-mode
predictions for limits and processes of a container that does not run yet (no runtime needed)."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from ansible_collections.oci.runtime.plugins.module_utils._module import container as adapter
from ansible_collections.oci.runtime.plugins.module_utils._module import containers as plural
from ansible_collections.oci.runtime.plugins.module_utils._runtime import layout as L
from ansible_collections.oci.runtime.plugins.module_utils._runtime.record import ContainerRecord

MANAGED = {plural.MANAGED_LABEL: "containers"}


def _container_params(tmp_path, **overrides):
    params = {k: v.get("default") for k, v in adapter.CONTAINER_OPTIONS.items()}
    params.update({"name": "web", "bundle": "/srv/b", "state_dir": str(tmp_path / "state"),
                   "runtime": "runc", "runtime_root": None})
    params.update(overrides)
    return params


def _item(**overrides):
    item = {k: v.get("default") for k, v in plural.ITEM_OPTIONS.items()}
    item.update(overrides)
    return item


def _task(tmp_path, items, **overrides):
    params = {k: v.get("default") for k, v in plural.CONTAINERS_OPTIONS.items()}
    params.update({"containers": items, "state_dir": str(tmp_path / "state"),
                   "runtime": "/nonexistent/runc", "runtime_root": None})
    params.update(overrides)
    return params


class FakeContainer(object):
    def __init__(self, **record):
        self.record = ContainerRecord.from_json(record, "state.json")


@pytest.fixture
def bundle(tmp_path):
    path = tmp_path / "bundle"
    (path / "rootfs").mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({
        "process": {"terminal": False, "args": ["sh"]}, "root": {"path": "rootfs"}}))
    return str(path)


def _tree(path):
    found = []
    for root, dirs, files in os.walk(str(path)):
        found += [os.path.join(root, n) for n in dirs + files]
    return sorted(found)


def _record(state_dir, name, labels, runtime="/bin/sh"):
    directory = os.path.join(state_dir, name)
    os.makedirs(directory)
    with open(os.path.join(directory, L.STATE_FILE), "w") as handle:
        json.dump({"bundle": "/srv/b", "runtime": runtime, "labels": labels}, handle)


# --- the option tables -------------------------------------------------------------------------------

def test_item_options_are_the_container_modules():
    for key, spec in adapter.CONTAINER_OPTIONS.items():
        assert plural.ITEM_OPTIONS[key] == spec
    assert "container" not in plural.ITEM_OPTIONS["resources"]["options"]
    assert "container" not in plural.ITEM_OPTIONS["processes"]["options"]
    assert plural.ITEM_OPTIONS["processes"]["options"]["id"]["required"] is True
    assert "state_dir" not in plural.ITEM_OPTIONS
    assert plural.ITEM_OPTIONS["runtime"].get("default") is None


# --- labels: the managed label on top of the item's ------------------------------------------------------

def test_wanted_labels_without_extra_labels_is_the_task_s(tmp_path):
    converger = adapter.ContainerConverger(_container_params(tmp_path, labels={"a": 1}))
    assert converger.wanted_labels({"x": "y"}) == {"a": "1"}
    converger = adapter.ContainerConverger(_container_params(tmp_path))
    assert converger.wanted_labels({"x": "y"}) is None


def test_wanted_labels_with_extra_labels(tmp_path):
    given = adapter.ContainerConverger(_container_params(tmp_path, labels={"a": "1"}),
                                       extra_labels=MANAGED)
    assert given.wanted_labels({"x": "y"}) == dict(MANAGED, a="1")  # exact: x goes
    kept = adapter.ContainerConverger(_container_params(tmp_path), extra_labels=MANAGED)
    assert kept.wanted_labels({"x": "y"}) == dict(MANAGED, x="y")  # left out: kept, label added


@pytest.mark.parametrize("recorded,labels,expected", [
    (["app=web", "oci.runtime.managed-by=containers"], {"app": "web"}, []),
    (["app=web", "oci.runtime.managed-by=containers"], None, []),
    (["app=web"], None, [("labels", "update", {"app": "web"}, dict(MANAGED, app="web"))]),
    (["app=web"], {"app": "web"}, [("labels", "update", {"app": "web"}, dict(MANAGED, app="web"))]),
    (["app=web", "oci.runtime.managed-by=other"], None,
     [("labels", "update", {"app": "web", "oci.runtime.managed-by": "other"},
       dict(MANAGED, app="web"))]),
])
def test_managed_label_compares_idempotently(tmp_path, recorded, labels, expected):
    converger = adapter.ContainerConverger(_container_params(tmp_path, labels=labels),
                                           extra_labels=MANAGED)
    record = {"bundle": "/srv/b", "runtime": "runc", "runtimeRoot": "", "runtimeArgs": [],
              "stdin": "", "stdout": "", "stderr": "", "noPivotRoot": False, "labels": recorded,
              "configDigest": "sha256:aaa"}
    assert converger.differences(FakeContainer(**record), None) == expected


def test_check_mode_new_container_predicts_the_managed_label(tmp_path, bundle):
    params = _container_params(tmp_path, bundle=bundle, runtime="/nonexistent/runc",
                               labels={"app": "web"})
    result = adapter.ContainerConverger(params, check_mode=True, extra_labels=MANAGED).run()
    assert result["container"]["labels"] == dict(MANAGED, app="web")
    params["labels"] = None
    result = adapter.ContainerConverger(params, check_mode=True, extra_labels=MANAGED).run()
    assert result["container"]["labels"] == MANAGED


# --- the declaration ---------------------------------------------------------------------------------------

def test_duplicate_names_fail_the_whole_task(tmp_path, bundle):
    items = [_item(name="a", bundle=bundle), _item(name="b", bundle=bundle),
             _item(name="a", bundle=bundle), _item(name="b", bundle=bundle)]
    with pytest.raises(plural.DeclarationError) as info:
        plural.ContainersConverger(_task(tmp_path, items), check_mode=True).run()
    assert "declared more than once: a, b" in str(info.value)


@pytest.mark.parametrize("overrides,message", [
    ({"concurrency": 0}, "concurrency must be 1 or more"),
    ({"managed_by": ""}, "managed_by must be a non-empty string"),
])
def test_bad_task_options(tmp_path, overrides, message):
    with pytest.raises(plural.DeclarationError) as info:
        plural.ContainersConverger(_task(tmp_path, [], **overrides), check_mode=True).run()
    assert message in str(info.value)


# --- items ---------------------------------------------------------------------------------------------------

def test_items_inherit_runtime_and_root_unless_they_set_their_own(tmp_path):
    task = {"state_dir": "/run/x", "runtime": "crun", "runtime_root": "/run/crun",
            "managed_by": "containers"}
    inherited = plural.ItemConverger(_item(name="a"), task)
    assert inherited.params["runtime"] == "crun" and inherited.params["runtime_root"] == "/run/crun"
    assert inherited.params["state_dir"] == "/run/x"
    assert "resources" not in inherited.params and "processes" not in inherited.params
    own = plural.ItemConverger(_item(name="a", runtime="runc", runtime_root="/r"), task)
    assert own.params["runtime"] == "runc" and own.params["runtime_root"] == "/r"


def test_check_mode_converges_all_and_touches_nothing(tmp_path, bundle):
    before = _tree(tmp_path)
    items = [_item(name="c%d" % i, bundle=bundle, labels={"n": i}) for i in range(5)]
    result = plural.ContainersConverger(_task(tmp_path, items, prune=True), check_mode=True).run()
    assert _tree(tmp_path) == before
    assert result["changed"] is True and "failed" not in result
    assert [r["name"] for r in result["containers"]] == ["c%d" % i for i in range(5)]
    assert all(r["changed"] and r["actions"][1:] == ["create", "start"] for r in result["containers"])
    assert [r["container"]["labels"] for r in result["containers"]] == [
        dict(MANAGED, n=str(i)) for i in range(5)]
    assert result["pruned"] == []
    assert [d["before_header"] for d in result["diff"]] == ["container c%d" % i for i in range(5)]


def test_one_bad_item_hides_none_of_the_others(tmp_path, bundle):
    items = [_item(name="good1", bundle=bundle),
             _item(name="no-bundle", bundle=str(tmp_path / "nope")),
             _item(name="../evil", bundle=bundle),
             _item(name="label", bundle=bundle, labels={plural.MANAGED_LABEL: "someone-else"}),
             _item(name="good2", bundle=bundle)]
    result = plural.ContainersConverger(_task(tmp_path, items), check_mode=True).run()
    assert result["failed"] is True
    names = [r["name"] for r in result["containers"]]
    assert names == ["good1", "no-bundle", "../evil", "label", "good2"]
    failed = [r["name"] for r in result["containers"] if r.get("failed")]
    assert failed == ["no-bundle", "../evil", "label"]
    assert result["containers"][0]["changed"] and result["containers"][4]["changed"]
    assert result["msg"].startswith("3 of 5 declared containers failed")
    for name in failed:
        assert name + ": " in result["msg"]
    assert "cannot be 'someone-else'" in result["containers"][3]["msg"]


def test_an_unexpected_error_is_that_item_s_alone(tmp_path, bundle, monkeypatch):
    real_run = adapter.ContainerConverger.run

    def run(self, only_if=None):
        if self.name == "boom":
            raise KeyError("bug")
        return real_run(self, only_if)

    monkeypatch.setattr(adapter.ContainerConverger, "run", run)
    items = [_item(name="boom", bundle=bundle), _item(name="fine", bundle=bundle)]
    result = plural.ContainersConverger(_task(tmp_path, items), check_mode=True).run()
    boom, fine = result["containers"]
    assert boom["failed"] and "unexpected error: KeyError" in boom["msg"] and boom["exception"]
    assert fine["changed"] and not fine.get("failed")


def test_check_mode_predicts_limits_and_processes_of_a_new_container(tmp_path, bundle):
    item = _item(name="web", bundle=bundle, resources={"memory": "64m", "pids_limit": 32},
                 processes=[{"id": "job", "args": ["true"], "state": "exited"},
                            {"id": "gone", "state": "absent"}])
    result = plural.ContainersConverger(_task(tmp_path, [item]), check_mode=True).run()["containers"][0]
    assert result["actions"][-2:] == ["update resources: memory, pids_limit", "process job: start"]
    assert result["resources"]["changed_fields"] == ["memory", "pids_limit"]
    assert [p["id"] for p in result["processes"]] == ["job", "gone"]
    assert [p["changed"] for p in result["processes"]] == [True, False]


@pytest.mark.parametrize("state", ["stopped", "absent"])
def test_limits_and_processes_are_left_alone_unless_it_runs(tmp_path, bundle, state):
    item = _item(name="web", bundle=bundle, state=state, resources={"memory": "64m"},
                 processes=[{"id": "job", "args": ["true"]}])
    result = plural.ContainersConverger(_task(tmp_path, [item]), check_mode=True).run()["containers"][0]
    assert "resources" not in result and "processes" not in result
    assert not any(a.startswith(("update resources", "process ")) for a in result["actions"])


def test_bad_limits_fail_their_item(tmp_path, bundle):
    item = _item(name="web", bundle=bundle, resources={"memory": "lots"})
    result = plural.ContainersConverger(_task(tmp_path, [item]), check_mode=True).run()
    assert result["failed"] and "memory" in result["containers"][0]["msg"]


# --- prune -----------------------------------------------------------------------------------------------------

def test_prune_candidates_are_undeclared_and_carry_this_label(tmp_path):
    state_dir = str(tmp_path / "state")
    _record(state_dir, "mine", ["oci.runtime.managed-by=containers", "app=x"])
    _record(state_dir, "declared", ["oci.runtime.managed-by=containers"])
    _record(state_dir, "unmanaged", ["app=x"])
    _record(state_dir, "other-set", ["oci.runtime.managed-by=monitoring"])
    _record(state_dir, "look-alike", ["oci.runtime.managed-by=containers-2"])
    os.makedirs(os.path.join(state_dir, "no-record"))
    assert plural.prune_candidates(state_dir, {"declared"}, "containers") == ["mine"]
    assert plural.prune_candidates(state_dir, set(), "monitoring") == ["other-set"]
    assert plural.prune_candidates(str(tmp_path / "missing"), set(), "containers") == []


def test_pruner_is_vetoed_by_a_label_changed_since(tmp_path):
    state_dir = str(tmp_path / "state")
    _record(state_dir, "was-mine", ["app=x"])  # the label went between the listing and the lock
    task = {"state_dir": state_dir, "managed_by": "containers",
            "prune_stop_signal": "SIGTERM", "prune_stop_timeout": 10}
    assert plural.Pruner("was-mine", task).run() is None
    assert os.path.isfile(os.path.join(state_dir, "was-mine", L.STATE_FILE))


def test_check_mode_prune_lists_without_removing(tmp_path, bundle):
    # A stand-in runtime that knows no container (check mode asks it for the status only).
    runtime = tmp_path / "fake-runc"
    runtime.write_text("#!/bin/sh\necho 'container does not exist' >&2\nexit 1\n")
    runtime.chmod(0o755)
    state_dir = str(tmp_path / "state")
    _record(state_dir, "old", ["oci.runtime.managed-by=containers"], runtime=str(runtime))
    _record(state_dir, "theirs", [], runtime=str(runtime))
    result = plural.ContainersConverger(_task(tmp_path, [], prune=True), check_mode=True).run()
    assert result["pruned"] == ["old"] and result["changed"] is True
    assert result["containers"] == []
    assert sorted(os.listdir(state_dir)) == ["old", "theirs"]
    assert result["diff"][0]["before_header"] == "container old"


def test_without_prune_nothing_is_pruned(tmp_path):
    state_dir = str(tmp_path / "state")
    _record(state_dir, "old", ["oci.runtime.managed-by=containers"])
    result = plural.ContainersConverger(_task(tmp_path, []), check_mode=True).run()
    assert result == {"changed": False, "containers": [], "pruned": [],
                      "elapsed": result["elapsed"]}


# --- concurrency -----------------------------------------------------------------------------------------------

def test_map_keeps_order_and_runs_concurrently():
    running, peak, lock = [0], [0], threading.Lock()

    def work(value):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05 if value % 2 else 0.01)
        with lock:
            running[0] -= 1
        return value * 10

    assert plural._map(work, list(range(8)), 4) == [v * 10 for v in range(8)]
    assert 1 < peak[0] <= 4
    peak[0] = 0
    assert plural._map(work, list(range(4)), 1) == [0, 10, 20, 30]
    assert peak[0] == 1


# --- build: an item's bundle definition --------------------------------------------------------------

@pytest.fixture
def rootfs_dir(tmp_path):
    path = tmp_path / "src-rootfs"
    (path / "bin").mkdir(parents=True)
    (path / "bin" / "sh").write_text("#!/bin/true\n")
    return str(path)


def _validate(items):
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
    validator = ArgumentSpecValidator(plural.CONTAINERS_OPTIONS)
    return validator.validate({"containers": items})


def test_build_options_are_the_bundle_modules_but_state():
    from ansible_collections.oci.runtime.plugins.module_utils._module import bundle as single
    build = plural.ITEM_OPTIONS["build"]
    assert set(build["options"]) == set(single.BUNDLE_OPTIONS)
    assert "state" not in build["options"]
    assert build["options"]["path"].get("required") is not True
    for key, spec in single.BUNDLE_OPTIONS.items():
        if key != "path":
            assert build["options"][key] == spec
    assert build["mutually_exclusive"] == single.BUNDLE_MUTUALLY_EXCLUSIVE


@pytest.mark.parametrize("build, error", [
    ({"rootfs_dir": "/a", "image": "/b"}, "mutually exclusive"),
    ({"args": ["sh"]}, "one of the following is required"),
    ({"rootfs_dir": "/a", "image_ref": "x"}, "image_ref"),
])
def test_build_rules_apply_inside_the_item(build, error):
    result = _validate([{"name": "web", "build": build}])
    assert result.error_messages and error in " ".join(result.error_messages)


def test_build_defaults_apply_inside_the_item():
    result = _validate([{"name": "web", "build": {"rootfs_dir": "/a"}}])
    assert not result.error_messages
    build = result.validated_parameters["containers"][0]["build"]
    assert build["readonly_rootfs"] is True and build["allow_devices"] is False


def test_check_mode_build_predicts_bundle_and_container(tmp_path, rootfs_dir):
    path = str(tmp_path / "bundles" / "web")
    items = [_item(name="web", build={"path": path, "rootfs_dir": rootfs_dir, "args": ["sh"]}),
             _item(name="api", bundle=str(tmp_path / "bundles" / "api"),
                   build={"rootfs_dir": rootfs_dir})]
    before = _tree(tmp_path)
    result = plural.ContainersConverger(_task(tmp_path, items), check_mode=True).run()
    assert _tree(tmp_path) == before
    assert "failed" not in result, result
    for item, where in zip(result["containers"], ("web", "api")):
        assert item["changed"] is True
        assert item["bundle"]["changed"] is True
        assert item["bundle"]["path"] == str(tmp_path / "bundles" / where)
        assert item["bundle"]["config_digest"].startswith("sha256:")
        assert item["container"]["config_digest"] == item["bundle"]["config_digest"]
        assert item["container"]["bundle"] == item["bundle"]["path"]
        assert item["actions"][0].startswith("bundle: ")
        assert item["actions"][-2:] == ["create", "start"]


def test_a_bundle_failure_is_its_item_s_alone(tmp_path, rootfs_dir, bundle):
    items = [_item(name="bad", build={"path": str(tmp_path / "b"),
                                      "rootfs_dir": str(tmp_path / "missing")}),
             _item(name="nopath", build={"rootfs_dir": rootfs_dir}),
             _item(name="good", bundle=bundle)]
    result = plural.ContainersConverger(_task(tmp_path, items), check_mode=True).run()
    assert [r.get("failed", False) for r in result["containers"]] == [True, True, False]
    assert "build needs a path" in result["containers"][1]["msg"]
    assert result["msg"].startswith("2 of 3 declared containers failed")


def test_absent_item_builds_nothing(tmp_path, rootfs_dir):
    items = [_item(name="gone", state="absent",
                   build={"path": str(tmp_path / "b"), "rootfs_dir": rootfs_dir})]
    result = plural.ContainersConverger(_task(tmp_path, items), check_mode=True).run()
    assert "failed" not in result and "bundle" not in result["containers"][0]
    assert result["containers"][0]["changed"] is False


def test_items_share_a_bundle_that_one_of_them_builds(tmp_path, rootfs_dir):
    path = str(tmp_path / "bundles" / "shared")
    build = {"rootfs_dir": rootfs_dir, "args": ["sh"]}
    items = [_item(name="a", bundle=path, build=build),
             _item(name="b", bundle=path, build=dict(build)),
             _item(name="c", bundle=path, state="paused")]
    assert list(plural.plan_builds(items)) == [path]
    result = plural.ContainersConverger(_task(tmp_path, items), check_mode=True).run()
    assert "failed" not in result, result
    digests = set(r["container"]["config_digest"] for r in result["containers"])
    assert len(digests) == 1
    assert digests == set([result["containers"][0]["bundle"]["config_digest"]])
    assert "bundle" not in result["containers"][2]


def test_one_bundle_defined_differently_fails_the_task(tmp_path, rootfs_dir):
    path = str(tmp_path / "b")
    items = [_item(name="a", build={"path": path, "rootfs_dir": rootfs_dir, "args": ["sh"]}),
             _item(name="b", build={"path": path + "/", "rootfs_dir": rootfs_dir})]
    with pytest.raises(plural.DeclarationError, match="build the same bundle"):
        plural.ContainersConverger(_task(tmp_path, items), check_mode=True).run()
