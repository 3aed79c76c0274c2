# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The container adapter: option table, differences, validation, check-mode planning (no runtime)."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.oci.runtime.plugins.module_utils._module import common
from ansible_collections.oci.runtime.plugins.module_utils._module import container as adapter
from ansible_collections.oci.runtime.plugins.module_utils._runtime import layout as L
from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import (
    BundleError,
    InvalidIdError,
    RuntimeNotFoundError,
)
from ansible_collections.oci.runtime.plugins.module_utils._runtime.record import ContainerRecord


class FakeBundleConfig(object):
    def __init__(self, digest):
        self.digest = digest
        self.bundle = "/srv/b"


class FakeContainer(object):
    """Container-like: only the ``record`` that differences() reads (from a state.json dict)."""

    def __init__(self, **record):
        self.record = ContainerRecord.from_json(record, "state.json")


def _record(**overrides):
    record = {
        "bundle": "/srv/b",
        "runtime": "runc",
        "runtimeRoot": "",
        "runtimeArgs": [],
        "stdin": "",
        "stdout": "",
        "stderr": "",
        "noPivotRoot": False,
        "labels": ["app=web", "tier=front"],
        "configDigest": "sha256:aaa",
    }
    record.update(overrides)
    return record


def _params(tmp_path, **overrides):
    params = {
        "name": "web",
        "bundle": "/srv/b",
        "state": "running",
        "state_dir": str(tmp_path / "state"),
        "runtime": "runc",
        "runtime_root": None,
        "runtime_args": [],
        "labels": None,
        "stdin": None,
        "stdout": None,
        "stderr": None,
        "no_pivot_root": False,
        "start_timeout": 30.0,
        "stop_timeout": 10.0,
        "stop_signal": "SIGTERM",
        "force_recreate": False,
    }
    params.update(overrides)
    return params


def _diff(tmp_path, record=None, digest="sha256:aaa", **params):
    converger = adapter.ContainerConverger(_params(tmp_path, **params))
    config = FakeBundleConfig(digest) if digest is not None else None
    return converger.differences(FakeContainer(**(record or _record())), config)


# --- Option -----------------------------------------------------------------------------------------

def test_option_defaults():
    option = adapter.Option("stdin", adapter.RECREATE)
    assert option.desired({"stdin": "/x"}) == "/x"
    assert option.desired({}) is None
    assert option.current(ContainerRecord("/b", stdio={"stdin": "/y"})) == "/y"
    assert option.current(ContainerRecord("/b")) == ""


def test_option_table():
    table = {o.name: o for o in adapter.OPTIONS}
    assert set(table) == {"bundle", "runtime", "runtime_root", "runtime_args", "stdin", "stdout",
                          "stderr", "no_pivot_root", "labels"}
    assert table["labels"].how == adapter.UPDATE
    assert all(o.how == adapter.RECREATE for n, o in table.items() if n != "labels")


def test_labels_option():
    assert adapter.LABELS.desired({"labels": None}) is None
    assert adapter.LABELS.desired({}) is None
    assert adapter.LABELS.desired({"labels": {"a": 1, 2: True}}) == {"a": "1", "2": "True"}
    record = ContainerRecord.from_json({"bundle": "/b", "labels": ["a=1", "b=x=y", "c="]}, "state.json")
    assert adapter.LABELS.current(record) == {"a": "1", "b": "x=y", "c": ""}
    assert adapter.LABELS.current(ContainerRecord("/b")) == {}


# --- differences -------------------------------------------------------------------------------------

def test_no_differences(tmp_path):
    assert _diff(tmp_path) == []
    assert _diff(tmp_path, bundle="/srv/b/") == []           # normalised
    assert _diff(tmp_path, bundle="/srv/./b") == []
    assert _diff(tmp_path, labels={"tier": "front", "app": "web"}) == []
    assert _diff(tmp_path, digest=None) == []


def test_undeclared_options_are_not_compared(tmp_path):
    record = _record(labels=["x=1"], bundle="/other")
    assert _diff(tmp_path, record=record, bundle=None, labels=None) == []


@pytest.mark.parametrize("params,expected", [
    ({"bundle": "/srv/other"}, ("bundle", "recreate", "/srv/b", "/srv/other")),
    ({"runtime": "crun"}, ("runtime", "recreate", "runc", "crun")),
    ({"runtime_root": "/run/r"}, ("runtime_root", "recreate", None, "/run/r")),
    ({"runtime_args": ["--debug"]}, ("runtime_args", "recreate", [], ["--debug"])),
    ({"stdin": "/dev/zero"}, ("stdin", "recreate", "", "/dev/zero")),
    ({"stdout": "/tmp/o"}, ("stdout", "recreate", "", "/tmp/o")),
    ({"stderr": "/tmp/e"}, ("stderr", "recreate", "", "/tmp/e")),
    ({"no_pivot_root": True}, ("no_pivot_root", "recreate", False, True)),
    ({"labels": {"app": "db"}}, ("labels", "update", {"app": "web", "tier": "front"}, {"app": "db"})),
    ({"labels": {}}, ("labels", "update", {"app": "web", "tier": "front"}, {})),
    ({"force_recreate": True}, ("force_recreate", "recreate", False, True)),
])
def test_single_difference(tmp_path, params, expected):
    assert _diff(tmp_path, **params) == [expected]


def test_config_digest_difference(tmp_path):
    assert _diff(tmp_path, digest="sha256:bbb") == [
        ("config_digest", "recreate", "sha256:aaa", "sha256:bbb")]


def test_several_differences_in_table_order(tmp_path):
    result = _diff(tmp_path, digest="sha256:new", runtime="crun", labels={"a": "b"}, bundle="/x",
                   force_recreate=True)
    assert [d[0] for d in result] == ["bundle", "runtime", "labels", "config_digest", "force_recreate"]


# --- validate_params -----------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides,error", [
    ({"name": "../evil"}, InvalidIdError),
    ({"name": ""}, InvalidIdError),
    ({"name": "a" * 129}, InvalidIdError),
    ({"stdout": "relative.log"}, BundleError),
    ({"stdin": "in"}, BundleError),
    ({"labels": {"a=b": "c"}}, InvalidIdError),
    ({"labels": {"": "c"}}, InvalidIdError),
    ({"labels": {"a": None}}, InvalidIdError),
    ({"stop_signal": "SIGNOPE"}, ValueError),
    ({"stop_signal": "0"}, ValueError),
    ({"start_timeout": -1}, ValueError),
    ({"stop_timeout": -0.5}, ValueError),
])
def test_validate_params_rejects(tmp_path, overrides, error):
    with pytest.raises(error):
        adapter.ContainerConverger(_params(tmp_path, **overrides))
    assert not (tmp_path / "state").exists()


def test_validate_params_accepts(tmp_path):
    adapter.validate_params(_params(tmp_path, stdout="/tmp/o", labels={"a": "b=c"}, stop_signal="9",
                                    start_timeout=0, stop_timeout=0))


def test_converger_builds_no_runtime_until_needed(tmp_path):
    converger = adapter.ContainerConverger(_params(tmp_path, runtime="/nonexistent/runc"))
    with pytest.raises(RuntimeNotFoundError):
        dummy = converger.runtime


def test_common_argument_spec():
    spec = common.argument_spec(name=dict(type="str", required=True))
    assert spec["state_dir"]["default"] == common.DEFAULT_STATE_DIR
    assert spec["name"] == dict(type="str", required=True)
    assert "name" not in common.COMMON_ARGUMENT_SPEC


# --- check mode: planning without a runtime --------------------------------------------------------------

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


@pytest.mark.parametrize("state,actions,status", [
    ("running", ["register: record container 'web' for bundle %s", "create", "start"], "running"),
    ("paused", ["register: record container 'web' for bundle %s", "create", "start", "pause"], "paused"),
    ("stopped", ["register: record container 'web' for bundle %s"], "stopped"),
])
def test_check_mode_new_container(tmp_path, bundle, state, actions, status):
    before = _tree(tmp_path)
    params = _params(tmp_path, bundle=bundle, state=state, runtime="/nonexistent/runc",
                     labels={"app": "web"})
    result = adapter.ContainerConverger(params, check_mode=True).run()
    assert _tree(tmp_path) == before  # nothing written, not even the state dir
    assert result["changed"] is True
    assert result["actions"] == [a.replace("%s", bundle) for a in actions]
    container = result["container"]
    assert container["status"] == status and container["id"] == "web"
    assert container["bundle"] == bundle and container["labels"] == {"app": "web"}
    assert container["config_digest"].startswith("sha256:")
    assert result["diff"]["before"] == {"status": "absent"}
    assert result["diff"]["after"]["status"] == status


def test_check_mode_absent_is_noop(tmp_path):
    result = adapter.ContainerConverger(_params(tmp_path, state="absent", bundle=None,
                                                runtime="/nonexistent/runc"), check_mode=True).run()
    assert result == {"changed": False, "actions": [], "container": {}}
    assert not (tmp_path / "state").exists()


def test_absent_without_record_needs_no_runtime(tmp_path):
    result = adapter.ContainerConverger(_params(tmp_path, state="absent", bundle=None,
                                                runtime="/nonexistent/runc")).run()
    assert result == {"changed": False, "actions": [], "container": {}}
    # only the state dir and the lock exist
    assert os.listdir(str(tmp_path / "state")) == [L.LOCKS_DIR]


def test_missing_bundle_for_new_container(tmp_path):
    converger = adapter.ContainerConverger(_params(tmp_path, bundle=None), check_mode=True)
    with pytest.raises(BundleError) as info:
        converger.run()
    assert "bundle is required" in str(info.value)


def test_check_mode_broken_bundle_fails(tmp_path):
    converger = adapter.ContainerConverger(_params(tmp_path, bundle=str(tmp_path / "nope")),
                                           check_mode=True)
    with pytest.raises(BundleError):
        converger.run()
