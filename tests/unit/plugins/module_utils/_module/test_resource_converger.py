# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The resource_update adapter: what differs is sent, what the kernel holds is verified, check mode
predicts; with a fake container, runtime and cgroup reader (no runc, no cgroups)."""

from __future__ import annotations

import pytest

from ansible_collections.oci.runtime.plugins.module_utils._module import resource_update as adapter
from ansible_collections.oci.runtime.plugins.module_utils._runtime import resources as res
from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import (
    InvalidIdError,
    NoSuchContainerError,
)

MIB = 1 << 20


class FakeInit(object):
    pid = 4242


class FakeRuntime(object):
    def __init__(self, kernel):
        self.kernel = kernel
        self.updates = []

    def update(self, container_id, document):
        self.updates.append((container_id, document))
        self.kernel.apply(document)


class FakeKernel(object):
    """The cgroup values of one container; ``apply`` is how the kernel takes an update (``refuse``:
    fields it keeps as they were)."""

    def __init__(self, version, values, refuse=()):
        self.version = version
        self.values = dict(values)
        self.refuse = refuse
        self.sent = []

    def apply(self, document):
        self.sent.append(document)
        for field, value in document["changes"].items():
            if field not in self.refuse:
                self.values[field] = res.to_kernel(field, value, self.version)


class FakeContainer(object):
    def __init__(self, kernel, status="running"):
        self._status = status
        self.init = FakeInit()
        self.runtime = FakeRuntime(kernel)

    def status(self):
        return self._status


class FakeFiles(object):
    def __init__(self, version):
        self.version = version


@pytest.fixture
def kernel(monkeypatch):
    """A running container on cgroup v1 with a few limits; tests may replace the values."""
    fake = FakeKernel(1, {"memory": 512 * MIB, "memory_swap": 1024 * MIB, "pids_limit": res.UNLIMITED,
                          "cpu_shares": 1024, "cpuset_cpus": "0"})
    container = FakeContainer(fake)
    monkeypatch.setattr(adapter, "load_container", lambda layout, container_id: container)
    monkeypatch.setattr(res.CgroupFiles, "of_pid",
                        classmethod(lambda cls, pid, *args: FakeFiles(fake.version)))
    monkeypatch.setattr(adapter.res, "read_kernel", lambda files: dict(fake.values))
    # The runtime's document is update_document's concern: here it carries the changes as they are.
    monkeypatch.setattr(adapter.res, "update_document", lambda changes: {"changes": dict(changes)})
    fake.container = container
    return fake


def _params(tmp_path, **limits):
    params = {name: None for name in adapter.RESOURCE_OPTIONS}
    params.update({"container": "web", "state_dir": str(tmp_path / "state"), "runtime": None,
                   "runtime_root": None})
    params.update(limits)
    return params


def _run(tmp_path, check_mode=False, **limits):
    return adapter.ResourceConverger(_params(tmp_path, **limits), check_mode=check_mode).run()


def test_bad_values_fail_before_anything(tmp_path):
    with pytest.raises(res.ResourceError):
        adapter.ResourceConverger(_params(tmp_path, memory="12q"))
    with pytest.raises(InvalidIdError):
        adapter.ResourceConverger(_params(tmp_path, container="../web"))


def test_no_container_is_the_one_error(tmp_path):
    with pytest.raises(NoSuchContainerError) as info:
        _run(tmp_path, check_mode=True, memory="256m")
    assert info.value.msg == "container 'web' does not exist under %s" % (tmp_path / "state")


@pytest.mark.parametrize("status", ["stopped", "created"])
def test_only_running_or_paused(tmp_path, kernel, status):
    kernel.container._status = status
    with pytest.raises(res.ResourceError) as info:
        _run(tmp_path, memory="256m")
    assert "is %s: limits can only be changed" % status in info.value.msg


def test_equal_values_are_not_sent(tmp_path, kernel):
    result = _run(tmp_path, memory="512m", cpu_shares=1024, pids_limit=-1)
    assert result == {"changed": False, "changed_fields": [], "resources": kernel.values,
                      "cgroup_version": 1}
    assert kernel.sent == []


def test_v1_memory_is_compared_in_whole_pages(tmp_path, kernel):
    result = _run(tmp_path, memory=512 * MIB + 1)
    assert result["changed"] is False


def test_differences_are_sent_and_verified(tmp_path, kernel):
    result = _run(tmp_path, memory="256m", cpu_shares=512, cpuset_cpus="0")
    assert result["changed"] is True
    assert result["changed_fields"] == ["cpu_shares", "memory"]
    assert kernel.sent == [{"changes": {"memory": 256 * MIB, "cpu_shares": 512}}]
    assert kernel.container.runtime.updates[0][0] == "web"
    assert result["resources"]["memory"] == 256 * MIB and result["resources"]["cpu_shares"] == 512
    assert result["diff"] == {"before": {"cpu_shares": 1024, "memory": 512 * MIB},
                              "after": {"cpu_shares": 512, "memory": 256 * MIB}}


def test_check_mode_predicts_what_the_kernel_will_hold(tmp_path, kernel):
    result = _run(tmp_path, check_mode=True, memory=256 * MIB + 100)
    assert kernel.sent == []
    assert result["changed_fields"] == ["memory"]
    assert result["resources"]["memory"] == 256 * MIB  # v1 rounds down to a page
    assert kernel.values["memory"] == 512 * MIB


def test_a_value_the_kernel_did_not_take_fails(tmp_path, kernel):
    kernel.refuse = ("pids_limit",)
    with pytest.raises(res.ResourceError) as info:
        _run(tmp_path, pids_limit=64, cpu_shares=512)
    assert info.value.msg == ("the kernel did not take these limits: pids_limit: sent 64, the "
                              "cgroup holds -1")


def test_a_field_the_host_does_not_expose_fails(tmp_path, kernel):
    with pytest.raises(res.ResourceError) as info:
        _run(tmp_path, blkio_weight=500)
    assert info.value.msg.startswith("blkio_weight cannot be set on this host: the kernel exposes "
                                     "no cgroup v1 file for it")


def test_kernel_memory_is_ignored_with_a_warning(tmp_path, kernel):
    result = _run(tmp_path, kernel_memory="64m")
    assert result["changed"] is False and kernel.sent == []
    assert len(result["warnings"]) == 1 and result["warnings"][0].startswith("kernel_memory is ignored")


def test_memory_change_sends_the_swap_limit_with_it(tmp_path, kernel):
    result = _run(tmp_path, check_mode=True, memory="768m", memory_swap="1g")
    assert result["changed_fields"] == ["memory", "memory_swap"]


def test_swap_below_the_current_memory_fails(tmp_path, kernel):
    with pytest.raises(res.ResourceError) as info:
        _run(tmp_path, check_mode=True, memory_swap="256m")
    assert info.value.msg == "memory_swap: %d must be -1 or at least the memory limit (%d)" % (
        256 * MIB, 512 * MIB)


def test_unlimited_swap_needs_no_memory_check(tmp_path, kernel):
    kernel.values["memory"] = res.UNLIMITED
    result = _run(tmp_path, check_mode=True, memory_swap=-1)
    assert result["changed_fields"] == ["memory_swap"]


def test_cgroup_v2_compares_shares_as_weights(tmp_path, kernel):
    kernel.version = 2
    kernel.values["cpu_shares"] = res.shares_to_weight(512)
    result = _run(tmp_path, cpu_shares=512)
    assert result["changed"] is False and result["cgroup_version"] == 2
