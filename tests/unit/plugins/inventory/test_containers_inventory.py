# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The containers inventory plugin: host variables, label groups, and a parse of a fixture
state dir with a fake runtime (no runc)."""

from __future__ import annotations

import json

import pytest

from ansible.errors import AnsibleParserError
from ansible.inventory.data import InventoryData
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import inventory_loader

from ansible_collections.oci.runtime.plugins.inventory import containers as plugin
from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import RuntimeNotFoundError
from ansible_collections.oci.runtime.plugins.module_utils._runtime.record import ContainerRecord


def test_host_vars_of_a_running_container():
    record = ContainerRecord.from_json(
        {"bundle": "/srv/web", "labels": ["app=web", "tier=front=1"], "runtime": "crun",
         "runtimeRoot": "/run/crun-root", "created": "2026-11-30T07:00:00Z"}, "state.json")
    assert plugin.host_vars("/run/oci-runtime", record, "running", 4242) == {
        "oci_status": "running",
        "oci_pid": 4242,
        "oci_bundle": "/srv/web",
        "oci_labels": {"app": "web", "tier": "front=1"},
        "oci_runtime": "crun",
        "oci_created": "2026-11-30T07:00:00Z",
        "oci_state_dir": "/run/oci-runtime",
        "ansible_connection": "oci.runtime.oci",
        "ansible_oci_state_dir": "/run/oci-runtime",
        "ansible_oci_runtime": "crun",
        "ansible_oci_runtime_root": "/run/crun-root",
    }


def test_host_vars_defaults():
    variables = plugin.host_vars("/s", ContainerRecord.from_json({"bundle": "/b"}, "state.json"),
                                 "stopped", None)
    assert variables["oci_labels"] == {}
    assert variables["oci_runtime"] == variables["ansible_oci_runtime"] == "runc"
    assert variables["ansible_oci_runtime_root"] is None  # the runtime's default
    assert variables["oci_pid"] is None


def test_label_group_names():
    assert plugin.label_group_names({"tier": "front", "app": "web"}) == ["label_app_web", "label_tier_front"]
    assert plugin.label_group_names({}) == []


@pytest.mark.parametrize("name, ok", [
    ("hosts.oci_containers.yml", True),
    ("hosts.oci_containers.yaml", True),
    ("oci_containers.yml", True),
    ("hosts.yml", False),
    ("hosts.oci_containers.json", False),
])
def test_verify_file(tmp_path, name, ok):
    path = tmp_path / name
    path.write_text("plugin: oci.runtime.containers\n")
    assert plugin.InventoryModule().verify_file(str(path)) is ok


def test_verify_file_of_a_missing_file(tmp_path):
    assert not plugin.InventoryModule().verify_file(str(tmp_path / "gone.oci_containers.yml"))


class FakeRuntime(object):
    name = "runc"
    root = None
    runtime_args = []

    def __init__(self, states):
        self.states = states

    def state(self, container_id):
        return self.states.get(container_id)


def _record(state_dir, container_id, labels=(), runtime="runc"):
    directory = state_dir / container_id
    directory.mkdir(parents=True)
    (directory / "state.json").write_text(json.dumps(
        {"bundle": "/srv/" + container_id, "labels": list(labels), "runtime": runtime,
         "runtimeRoot": "/r"}))


def _parse(tmp_path, monkeypatch, config, states=None, broken=()):
    def oci_runtime(record):
        if record.runtime in broken:
            raise RuntimeNotFoundError("OCI runtime %r not found" % record.runtime)
        return FakeRuntime(states or {})

    monkeypatch.setattr(ContainerRecord, "oci_runtime", oci_runtime)
    source = tmp_path / "test.oci_containers.yml"
    source.write_text(config)
    inventory = InventoryData()
    module = inventory_loader.get("oci.runtime.containers")
    module.parse(inventory, DataLoader(), str(source), cache=False)
    return inventory


def test_parse_lists_by_status_with_label_groups(tmp_path, monkeypatch):
    state = tmp_path / "state"
    _record(state, "ci-a", labels=["app=web", "odd key=x y"])
    _record(state, "ci-b", labels=["app=db"])
    _record(state, "ci-c")
    config = "plugin: oci.runtime.containers\nstate_dirs: [%s]\nstatuses: [stopped]\n" % state
    inventory = _parse(tmp_path, monkeypatch, config)
    assert sorted(inventory.hosts) == ["ci-a", "ci-b", "ci-c"]
    host = inventory.get_host("ci-a")
    assert host.vars["oci_status"] == "stopped"
    assert host.vars["ansible_connection"] == "oci.runtime.oci"
    assert host.vars["ansible_oci_state_dir"] == str(state)
    assert host.vars["ansible_oci_runtime_root"] == "/r"
    assert sorted(g.name for g in host.get_groups()) == ["label_app_web", "label_odd_key_x_y"]
    assert [h.name for h in inventory.groups["label_app_db"].get_hosts()] == ["ci-b"]


def test_parse_default_statuses_is_running_only(tmp_path, monkeypatch):
    state = tmp_path / "state"
    _record(state, "ci-a")
    config = "plugin: oci.runtime.containers\nstate_dirs: [%s]\n" % state
    assert list(_parse(tmp_path, monkeypatch, config).hosts) == []


def test_parse_duplicate_ids_and_missing_dirs(tmp_path, monkeypatch):
    first, second = tmp_path / "one", tmp_path / "two"
    _record(first, "ci-a", labels=["from=one"])
    _record(second, "ci-a", labels=["from=two"])
    config = ("plugin: oci.runtime.containers\nstate_dirs: [%s, %s, %s]\nstatuses: [stopped]\n"
              % (first, tmp_path / "missing", second))
    inventory = _parse(tmp_path, monkeypatch, config)
    assert list(inventory.hosts) == ["ci-a"]
    assert inventory.get_host("ci-a").vars["oci_labels"] == {"from": "one"}


def test_parse_leaves_out_a_broken_container(tmp_path, monkeypatch):
    state = tmp_path / "state"
    _record(state, "ci-a", runtime="gone")
    _record(state, "ci-b")
    (state / "ci-c").mkdir()
    (state / "ci-c" / "state.json").write_text("{not json")
    config = "plugin: oci.runtime.containers\nstate_dirs: [%s]\nstatuses: [stopped]\n" % state
    inventory = _parse(tmp_path, monkeypatch, config, broken=("gone",))
    assert list(inventory.hosts) == ["ci-b"]


def test_parse_without_label_groups_and_with_keyed_groups(tmp_path, monkeypatch):
    state = tmp_path / "state"
    _record(state, "ci-a", labels=["app=web"])
    config = ("plugin: oci.runtime.containers\nstate_dirs: [%s]\nstatuses: [stopped]\n"
              "label_groups: false\nkeyed_groups:\n  - key: oci_status\n    prefix: status\n" % state)
    inventory = _parse(tmp_path, monkeypatch, config)
    assert sorted(g.name for g in inventory.get_host("ci-a").get_groups()) == ["status_stopped"]


def test_parse_unreadable_state_dir_is_an_error(tmp_path, monkeypatch):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    config = "plugin: oci.runtime.containers\nstate_dirs: [%s]\n" % not_a_dir
    with pytest.raises(AnsibleParserError) as info:
        _parse(tmp_path, monkeypatch, config)
    assert "cannot list state_dir" in str(info.value)
