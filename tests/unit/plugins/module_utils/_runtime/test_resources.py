# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""resources.py: parsing and checking limits, the runtime's update document, the kernel's own
terms (v1 page rounding, v2 conversions), and reading limits from cgroup v1 and v2 fixture trees."""

from __future__ import annotations

import os

import pytest

from ansible_collections.oci.runtime.plugins.module_utils._runtime import resources as res
from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import RuntimeCoreError

KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30
PAGE = res.PAGE_SIZE
V1_UNLIMITED = "9223372036854771712"  # what cgroup v1 shows for "no memory limit" (4 KiB pages)


# --- parse_size ------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [
    (1048576, 1048576),
    ("1048576", 1048576),
    (" 1048576 ", 1048576),
    ("128m", 128 * MIB),
    ("128M", 128 * MIB),
    ("128 m", 128 * MIB),
    ("128MB", 128 * MIB),
    ("128MiB", 128 * MIB),
    ("128mib", 128 * MIB),
    ("1G", GIB),
    ("1g", GIB),
    ("1GB", GIB),
    ("512KiB", 512 * KIB),
    ("512k", 512 * KIB),
    ("512kb", 512 * KIB),
    ("1.5g", GIB + GIB // 2),
    ("0.5m", MIB // 2),
    ("2t", 2 << 40),
    ("1p", 1 << 50),
    ("100b", 100),
    ("100B", 100),
    (-1, -1),
    ("-1", -1),
    (" -1 ", -1),
])
def test_parse_size_accepts(value, expected):
    assert res.parse_size("memory", value) == expected


@pytest.mark.parametrize("value", [0, "0", "0m", "1.5", ".5"])
def test_parse_size_rejects_zero_and_fractions_of_bytes(value):
    # The runtimes read 0 as "leave as it is": it could never be verified against the kernel.
    with pytest.raises(res.ResourceError) as err:
        res.parse_size("memory", value)
    assert "memory" in str(err.value)


@pytest.mark.parametrize("value", [-2, -1048576, "-2", "-5m", "-1k", "-1.5g"])
def test_parse_size_rejects_negatives_other_than_minus_one(value):
    with pytest.raises(res.ResourceError) as err:
        res.parse_size("memory_swap", value)
    assert err.value.msg.startswith("memory_swap: ")
    assert "negative" in err.value.msg
    assert "-1 for unlimited" in err.value.msg


@pytest.mark.parametrize("value", [
    "12 parsecs", "", " ", "m", "abc", "0x10", "1e6", "128mm", "128 mb b", "1,5g", "1.g", ".5g",
    "--1", "1-", "128x", [128], {"m": 128},
])
def test_parse_size_rejects_garbage(value):
    with pytest.raises(res.ResourceError) as err:
        res.parse_size("memory_reservation", value)
    assert err.value.msg.startswith("memory_reservation: ")
    assert "is not a size" in err.value.msg


@pytest.mark.parametrize("value", ["512Ki", "1Gi", "128mi"])
def test_parse_size_rejects_binary_unit_without_b(value):
    with pytest.raises(res.ResourceError) as err:
        res.parse_size("memory", value)
    assert err.value.msg.startswith("memory: ")
    assert "did you mean %sB?" % value in err.value.msg


@pytest.mark.parametrize("value", [True, False])
def test_parse_size_rejects_bool(value):
    with pytest.raises(res.ResourceError) as err:
        res.parse_size("kernel_memory", value)
    assert err.value.msg == "kernel_memory: %r is not a size" % value


def test_resource_error_is_a_runtime_core_error():
    # main() of the module turns RuntimeCoreError into fail_json(msg=...).
    with pytest.raises(RuntimeCoreError):
        res.parse_size("memory", "nope")


# --- parse_int -------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [(5, 5), ("5", 5), (" 7 ", 7), (-1, -1), ("-1", -1)])
def test_parse_int_accepts(value, expected):
    assert res.parse_int("cpu_quota", value) == expected


@pytest.mark.parametrize("value", ["abc", "1.5", "", "10k", True, False, None])
def test_parse_int_rejects(value):
    with pytest.raises(res.ResourceError) as err:
        res.parse_int("pids_limit", value)
    assert err.value.msg.startswith("pids_limit: ")
    assert "is not an integer" in err.value.msg


# --- cpusets ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, members", [
    ("", set()),
    ("0", {0}),
    ("0-3", {0, 1, 2, 3}),
    ("0,2", {0, 2}),
    ("0-1,4-5,7", {0, 1, 4, 5, 7}),
    ("3-3", {3}),
    ("1,0,1", {0, 1}),
])
def test_expand_cpuset(text, members):
    assert res.expand_cpuset(text) == members


@pytest.mark.parametrize("text", ["1-0", "a", "0-1-2", "-1", "1-", ",", "0,,1", "0-a", "0.5", "0 1"])
def test_expand_cpuset_malformed(text):
    assert res.expand_cpuset(text) is None


@pytest.mark.parametrize("members, text", [
    (set(), ""),
    ({0}, "0"),
    ({0, 1}, "0-1"),
    ({0, 2}, "0,2"),
    ({0, 1, 2, 4, 6, 7}, "0-2,4,6-7"),
])
def test_format_cpuset(members, text):
    assert res.format_cpuset(members) == text


@pytest.mark.parametrize("value, online, expected", [
    ("0", "0-1", "0"),
    ("0-1", "0-1", "0-1"),
    ("0,1", "0-1", "0-1"),
    ("1,0", "0-1", "0-1"),
    (" 0 , 1 ", "0-1", "0-1"),
    ("0-1,3", "0-3", "0-1,3"),
    ("8-9", "0-3,8-11", "8-9"),
    (0, "0", "0"),
])
def test_parse_cpuset_normalises(value, online, expected):
    assert res.parse_cpuset("cpuset_cpus", value, online) == expected


@pytest.mark.parametrize("value, online, missing", [
    ("0-64", "0-1", "2,3,4"),          # the message lists every missing cpu; check the start
    ("2", "0-1", "2"),
    ("0-3", "0-1", "2,3"),
    ("4", "0-3,8-11", "4"),
    ("1", "0", "1"),
])
def test_parse_cpuset_rejects_offline(value, online, missing):
    with pytest.raises(res.ResourceError) as err:
        res.parse_cpuset("cpuset_cpus", value, online)
    assert err.value.msg.startswith("cpuset_cpus: " + missing)
    assert "not online on this host (online: %s)" % online in err.value.msg


@pytest.mark.parametrize("value", ["1-0", "", " ", "a", "0-1-2", "-1", "0,,1", "first"])
def test_parse_cpuset_rejects_malformed(value):
    with pytest.raises(res.ResourceError) as err:
        res.parse_cpuset("cpuset_mems", value, "0-1")
    assert err.value.msg.startswith("cpuset_mems: ")
    assert "is not a cpu/node list" in err.value.msg


def test_host_online_is_a_parseable_list():
    for kind in ("cpus", "mems"):
        members = res.expand_cpuset(res.host_online(kind))
        assert members and 0 in members


# --- parse_request ---------------------------------------------------------------------------------

def _request(**params):
    return res.parse_request(params, online_cpus="0-3", online_mems="0")


def test_parse_request_converts_every_field():
    assert _request(
        cpu_shares=512, blkio_weight="500", cpu_period=100000, cpu_quota=-1,
        cpuset_cpus="0,1", cpuset_mems="0", kernel_memory="64m", kernel_tcp_memory=1024,
        memory="128m", memory_reservation="64m", memory_swap="256m", pids_limit="64",
    ) == {
        "cpu_shares": 512, "blkio_weight": 500, "cpu_period": 100000, "cpu_quota": -1,
        "cpuset_cpus": "0-1", "cpuset_mems": "0", "kernel_memory": 64 * MIB,
        "kernel_tcp_memory": 1024, "memory": 128 * MIB, "memory_reservation": 64 * MIB,
        "memory_swap": 256 * MIB, "pids_limit": 64,
    }


def test_parse_request_skips_fields_not_given():
    assert _request(memory=None, cpu_shares=None, container="web", state_dir="/x") == {}
    assert _request(pids_limit=10) == {"pids_limit": 10}


@pytest.mark.parametrize("params", [
    dict(cpu_shares=2), dict(cpu_shares=262144), dict(cpu_shares=1024),
    dict(blkio_weight=10), dict(blkio_weight=1000),
    dict(cpu_period=1000), dict(cpu_period=1000000),
    dict(cpu_quota=-1), dict(cpu_quota=1000), dict(cpu_quota=10000000),
    dict(pids_limit=-1), dict(pids_limit=1),
    dict(memory="128m", memory_swap="128m"), dict(memory="128m", memory_swap=-1),
    dict(memory=-1, memory_swap=-1), dict(memory_swap="64m"),
    dict(memory="128m", memory_reservation="128m"), dict(memory=-1, memory_reservation="1g"),
    dict(memory="128m", memory_reservation=-1),
])
def test_parse_request_range_limits_accepted(params):
    assert set(_request(**params)) == set(params)


@pytest.mark.parametrize("params, field, words", [
    (dict(cpu_shares=1), "cpu_shares", "outside 2-262144"),
    (dict(cpu_shares=262145), "cpu_shares", "outside 2-262144"),
    (dict(cpu_shares=-1), "cpu_shares", "outside 2-262144"),
    (dict(blkio_weight=5), "blkio_weight", "outside 10-1000"),
    (dict(blkio_weight=9), "blkio_weight", "outside 10-1000"),
    (dict(blkio_weight=1001), "blkio_weight", "outside 10-1000"),
    (dict(cpu_period=100), "cpu_period", "outside 1000-1000000"),
    (dict(cpu_period=999), "cpu_period", "outside 1000-1000000"),
    (dict(cpu_period=1000001), "cpu_period", "outside 1000-1000000"),
    (dict(cpu_quota=500), "cpu_quota", "at least 1000"),
    (dict(cpu_quota=0), "cpu_quota", "at least 1000"),
    (dict(cpu_quota=-2), "cpu_quota", "at least 1000"),
    (dict(pids_limit=0), "pids_limit", "at least 1"),
    (dict(pids_limit=-2), "pids_limit", "at least 1"),
    (dict(memory="128m", memory_swap="64m"), "memory_swap", "at least memory (134217728)"),
    (dict(memory=-1, memory_swap="64m"), "memory_swap", "at least memory (-1)"),
    (dict(memory="128m", memory_reservation="256m"), "memory_reservation", "above memory"),
    (dict(memory="12 parsecs"), "memory", "is not a size"),
    (dict(memory=-5), "memory", "negative"),
    (dict(memory_swap="-3m"), "memory_swap", "negative"),
    (dict(kernel_memory="lots"), "kernel_memory", "is not a size"),
    (dict(kernel_tcp_memory=True), "kernel_tcp_memory", "is not a size"),
    (dict(cpu_shares="many"), "cpu_shares", "is not an integer"),
    (dict(cpuset_cpus="0-64"), "cpuset_cpus", "not online"),
    (dict(cpuset_cpus="1-0"), "cpuset_cpus", "is not a cpu/node list"),
    (dict(cpuset_mems="1"), "cpuset_mems", "not online"),
    (dict(cpuset_mems="x"), "cpuset_mems", "is not a cpu/node list"),
])
def test_parse_request_errors_name_the_field(params, field, words):
    with pytest.raises(res.ResourceError) as err:
        _request(**params)
    assert err.value.msg.startswith(field + ": ")
    assert words in err.value.msg


def test_parse_request_uses_the_host_online_lists_by_default():
    online = res.host_online("cpus")
    assert res.parse_request({"cpuset_cpus": online}) == {"cpuset_cpus": res.format_cpuset(
        res.expand_cpuset(online))}
    with pytest.raises(res.ResourceError) as err:
        res.parse_request({"cpuset_cpus": "100000"})
    assert err.value.msg.startswith("cpuset_cpus: 100000 not online")


# --- update_document -------------------------------------------------------------------------------

def test_update_document_every_field():
    assert res.update_document({
        "memory": 128 * MIB, "memory_reservation": 64 * MIB, "memory_swap": 256 * MIB,
        "cpu_shares": 512, "cpu_quota": 50000, "cpu_period": 100000, "cpuset_cpus": "0-1",
        "cpuset_mems": "0", "blkio_weight": 500, "pids_limit": 64,
    }) == {
        "memory": {"limit": 128 * MIB, "reservation": 64 * MIB, "swap": 256 * MIB},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0"},
        "blockIO": {"weight": 500},
        "pids": {"limit": 64},
    }


@pytest.mark.parametrize("changes, document", [
    ({}, {}),
    ({"memory": -1}, {"memory": {"limit": -1}}),
    ({"memory": 128 * MIB, "memory_swap": -1}, {"memory": {"limit": 128 * MIB, "swap": -1}}),
    ({"cpu_quota": -1}, {"cpu": {"quota": -1}}),
    ({"pids_limit": -1}, {"pids": {"limit": -1}}),
    ({"cpuset_mems": "0"}, {"cpu": {"mems": "0"}}),
    ({"blkio_weight": 10}, {"blockIO": {"weight": 10}}),
    # The ignored fields never reach the runtime.
    ({"kernel_memory": MIB, "kernel_tcp_memory": MIB}, {}),
])
def test_update_document_only_the_changes(changes, document):
    assert res.update_document(changes) == document


# --- to_kernel -------------------------------------------------------------------------------------

@pytest.mark.parametrize("field", ["memory", "memory_reservation", "memory_swap"])
def test_to_kernel_v1_rounds_memory_down_to_pages(field):
    assert res.to_kernel(field, 1000001, 1) == 1000001 - 1000001 % PAGE
    assert res.to_kernel(field, 128 * MIB, 1) == 128 * MIB
    assert res.to_kernel(field, PAGE + 1, 1) == PAGE
    assert res.to_kernel(field, PAGE - 1, 1) == 0
    assert res.to_kernel(field, -1, 1) == -1


def test_to_kernel_v1_page_rounding_with_4k_pages():
    if PAGE != 4096:
        pytest.skip("this host's page size is %d" % PAGE)
    assert res.to_kernel("memory", 1000001, 1) == 999424


@pytest.mark.parametrize("field, value", [
    ("cpu_shares", 1024), ("cpu_shares", 2), ("blkio_weight", 500), ("cpu_period", 100000),
    ("cpu_quota", 50000), ("cpu_quota", -1), ("pids_limit", 64), ("pids_limit", -1),
    ("cpuset_cpus", "0-1"), ("cpuset_mems", "0"),
])
def test_to_kernel_v1_keeps_other_fields(field, value):
    assert res.to_kernel(field, value, 1) == value


@pytest.mark.parametrize("field", ["memory", "memory_reservation", "memory_swap"])
def test_to_kernel_v2_keeps_memory_bytes(field):
    assert res.to_kernel(field, 1000001, 2) == 1000001
    assert res.to_kernel(field, -1, 2) == -1


@pytest.mark.parametrize("shares, weight", [
    (2, 1),
    (1024, 39),         # runc: 1 + (1024 - 2) * 9999 / 262142
    (512, 20),
    (262144, 10000),
])
def test_to_kernel_v2_cpu_shares_to_weight(shares, weight):
    assert res.shares_to_weight(shares) == weight
    assert res.to_kernel("cpu_shares", shares, 2) == weight


@pytest.mark.parametrize("blkio, weight", [
    (10, 1),
    (500, 4950),        # runc: 1 + (500 - 10) * 9999 / 990
    (100, 910),
    (1000, 10000),
])
def test_to_kernel_v2_blkio_weight_read_back_from_io_weight(blkio, weight):
    # runc writes io.weight = 1 + (blkio - 10) * 9999 / 990; weights are compared in the 10-1000
    # scale, so io.weight is read back through the inverse.
    assert res.io_weight_to_blkio(weight) == blkio
    assert res.to_kernel("blkio_weight", blkio, 2) == blkio


@pytest.mark.parametrize("field, value", [
    ("cpu_period", 100000), ("cpu_quota", 50000), ("cpu_quota", -1), ("pids_limit", 64),
    ("pids_limit", -1), ("cpuset_cpus", "0-1"), ("cpuset_mems", "0"),
])
def test_to_kernel_v2_keeps_other_fields(field, value):
    assert res.to_kernel(field, value, 2) == value


# --- cgroup fixture trees --------------------------------------------------------------------------

def _write(root, rel, content):
    path = os.path.join(str(root), rel)
    if not os.path.isdir(os.path.dirname(path)):
        os.makedirs(os.path.dirname(path))
    with open(path, "w") as handle:
        handle.write(content)


V2_PROC = "0::/mycontainer\n"


def _v2_tree(tmp_path, **files):
    """A unified (v2) tree: cgroup.controllers at the root, the container at /mycontainer."""
    root = tmp_path / "cgroup"
    _write(root, "cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n")
    defaults = {
        "cpu.weight": "100\n",
        "cpu.max": "max 100000\n",
        "cpuset.cpus": "\n",
        "cpuset.cpus.effective": "0-1\n",
        "cpuset.mems": "\n",
        "cpuset.mems.effective": "0\n",
        "memory.max": "max\n",
        "memory.low": "0\n",
        "memory.swap.max": "max\n",
        "io.weight": "default 100\n",
        "pids.max": "max\n",
    }
    defaults.update(files)
    for name, content in defaults.items():
        if content is not None:
            _write(root, os.path.join("mycontainer", name), content)
    return res.CgroupFiles(V2_PROC, cgroup_root=str(root))


V1_PROC = """\
12:hugetlb:/mycontainer
9:name=systemd:/mycontainer
8:pids:/mycontainer
7:blkio:/mycontainer
6:freezer:/mycontainer
5:devices:/mycontainer
4:memory:/process_api/xyz/mycontainer
3:cpuset:/mycontainer
2:cpuacct:/mycontainer
1:cpu:/mycontainer
0::/mycontainer
"""

V1_DEFAULTS = {
    "cpu/mycontainer/cpu.shares": "1024\n",
    "cpu/mycontainer/cpu.cfs_period_us": "100000\n",
    "cpu/mycontainer/cpu.cfs_quota_us": "-1\n",
    "cpuset/mycontainer/cpuset.cpus": "0-1\n",
    "cpuset/mycontainer/cpuset.mems": "0\n",
    "memory/process_api/xyz/mycontainer/memory.limit_in_bytes": V1_UNLIMITED + "\n",
    "memory/process_api/xyz/mycontainer/memory.soft_limit_in_bytes": V1_UNLIMITED + "\n",
    "memory/process_api/xyz/mycontainer/memory.memsw.limit_in_bytes": V1_UNLIMITED + "\n",
    "blkio/mycontainer/blkio.bfq.weight": "100\n",
    "pids/mycontainer/pids.max": "max\n",
}


def _v1_tree(tmp_path, proc=V1_PROC, **files):
    """A hybrid host's v1 tree (like this project's machines): the memory cgroup is nested."""
    root = tmp_path / "cgroup"
    root.mkdir()
    tree = dict(V1_DEFAULTS)
    tree.update(files)
    for rel, content in tree.items():
        if content is not None:
            _write(root, rel, content)
    # The hybrid host's cgroup2 mount holds no controllers and no cgroup.controllers at the root.
    (root / "unified" / "mycontainer").mkdir(parents=True)
    return res.CgroupFiles(proc, cgroup_root=str(root))


# --- CgroupFiles -----------------------------------------------------------------------------------

def test_cgroup_files_v2_paths(tmp_path):
    files = _v2_tree(tmp_path)
    root = str(tmp_path / "cgroup")
    assert files.version == 2
    assert files.path("memory", "memory.max") == os.path.join(root, "mycontainer", "memory.max")
    assert files.path("cpu", "cpu.max") == os.path.join(root, "mycontainer", "cpu.max")
    assert files.read("memory", "memory.max") == "max"
    assert files.read("memory", "memory.nope") is None


def test_cgroup_files_v2_without_a_unified_line(tmp_path):
    _v2_tree(tmp_path)
    files = res.CgroupFiles("1:name=systemd:/x\n", cgroup_root=str(tmp_path / "cgroup"))
    assert files.version == 2
    assert files.path("memory", "memory.max") is None
    assert res.read_kernel(files) == {}


def test_cgroup_files_v1_paths(tmp_path):
    files = _v1_tree(tmp_path)
    root = str(tmp_path / "cgroup")
    assert files.version == 1
    assert files.path("memory", "memory.limit_in_bytes") == os.path.join(
        root, "memory", "process_api", "xyz", "mycontainer", "memory.limit_in_bytes")
    assert files.path("cpu", "cpu.shares") == os.path.join(root, "cpu", "mycontainer", "cpu.shares")
    assert files.path("pids", "pids.max") == os.path.join(root, "pids", "mycontainer", "pids.max")
    assert files.path("rdma", "rdma.max") is None
    assert files.read("rdma", "rdma.max") is None
    assert files.read("blkio", "blkio.weight") is None  # no such file: bfq only
    assert files.read("blkio", "blkio.bfq.weight") == "100"


def test_cgroup_files_v1_comounted_controllers(tmp_path):
    root = tmp_path / "cgroup"
    _write(root, "cpu,cpuacct/c1/cpu.shares", "512\n")
    files = res.CgroupFiles("2:cpu,cpuacct:/c1\n", cgroup_root=str(root))
    assert files.v1 == {"cpu": "/c1", "cpuacct": "/c1"}
    assert files.path("cpuacct", "x") == os.path.join(str(root), "cpuacct", "c1", "x")


def test_cgroup_files_of_pid_reads_proc():
    files = res.CgroupFiles.of_pid(os.getpid())
    assert files.version in (1, 2)
    assert files.v1 or files.v2 is not None


def test_cgroup_files_of_a_pid_that_does_not_exist():
    with pytest.raises(res.ResourceError) as err:
        res.CgroupFiles.of_pid(2 ** 30)
    assert err.value.msg.startswith("cannot read the cgroups of pid %d: " % 2 ** 30)


# --- read_kernel: cgroup v1 ------------------------------------------------------------------------

def test_read_kernel_v1_defaults(tmp_path):
    assert res.read_kernel(_v1_tree(tmp_path)) == {
        "cpu_shares": 1024, "cpu_period": 100000, "cpu_quota": -1,
        "cpuset_cpus": "0-1", "cpuset_mems": "0",
        "memory": -1, "memory_reservation": -1, "memory_swap": -1,
        "blkio_weight": 100, "pids_limit": -1,
    }


def test_read_kernel_v1_limits_set(tmp_path):
    mem = "memory/process_api/xyz/mycontainer/"
    files = _v1_tree(tmp_path, **{
        "cpu/mycontainer/cpu.shares": "512\n",
        "cpu/mycontainer/cpu.cfs_period_us": "50000\n",
        "cpu/mycontainer/cpu.cfs_quota_us": "25000\n",
        "cpuset/mycontainer/cpuset.cpus": "0,1,3\n",
        "cpuset/mycontainer/cpuset.mems": "0\n",
        mem + "memory.limit_in_bytes": "134217728\n",
        mem + "memory.soft_limit_in_bytes": "67108864\n",
        mem + "memory.memsw.limit_in_bytes": "268435456\n",
        "blkio/mycontainer/blkio.bfq.weight": "500\n",
        "pids/mycontainer/pids.max": "64\n",
    })
    assert res.read_kernel(files) == {
        "cpu_shares": 512, "cpu_period": 50000, "cpu_quota": 25000,
        "cpuset_cpus": "0-1,3", "cpuset_mems": "0",
        "memory": 134217728, "memory_reservation": 67108864, "memory_swap": 268435456,
        "blkio_weight": 500, "pids_limit": 64,
    }


def test_read_kernel_v1_reads_the_nested_memory_cgroup(tmp_path):
    # A file at the un-nested place must not be read.
    files = _v1_tree(tmp_path, **{
        "memory/mycontainer/memory.limit_in_bytes": "4096\n",
        "memory/process_api/xyz/mycontainer/memory.limit_in_bytes": "8192\n",
    })
    assert res.read_kernel(files)["memory"] == 8192


def test_read_kernel_v1_prefers_blkio_weight_over_bfq(tmp_path):
    files = _v1_tree(tmp_path, **{"blkio/mycontainer/blkio.weight": "300\n",
                                  "blkio/mycontainer/blkio.bfq.weight": "100\n"})
    assert res.read_kernel(files)["blkio_weight"] == 300


def test_read_kernel_v1_without_weights_or_swap_accounting(tmp_path):
    files = _v1_tree(tmp_path, **{
        "blkio/mycontainer/blkio.bfq.weight": None,
        "memory/process_api/xyz/mycontainer/memory.memsw.limit_in_bytes": None,
    })
    (tmp_path / "cgroup" / "blkio" / "mycontainer").mkdir(parents=True)
    values = res.read_kernel(files)
    assert "blkio_weight" not in values
    assert "memory_swap" not in values
    assert values["memory"] == -1


def test_read_kernel_v1_without_a_controller(tmp_path):
    proc = "\n".join(line for line in V1_PROC.splitlines() if ":pids:" not in line) + "\n"
    values = res.read_kernel(_v1_tree(tmp_path, proc=proc))
    assert "pids_limit" not in values
    assert values["cpu_shares"] == 1024


def test_read_kernel_v1_round_trip_of_page_rounding(tmp_path):
    # runc writes 1000001; the kernel keeps whole pages; the rerun must see no change.
    kept = 1000001 - 1000001 % PAGE
    files = _v1_tree(tmp_path, **{
        "memory/process_api/xyz/mycontainer/memory.limit_in_bytes": "%d\n" % kept})
    assert res.read_kernel(files)["memory"] == res.to_kernel("memory", 1000001, 1)


# --- read_kernel: cgroup v2 ------------------------------------------------------------------------

def test_read_kernel_v2_defaults(tmp_path):
    values = res.read_kernel(_v2_tree(tmp_path, **{"cpuset.cpus": "0-1\n", "cpuset.mems": "0\n"}))
    assert values == {
        "cpu_shares": 100, "cpu_period": 100000, "cpu_quota": -1,
        "cpuset_cpus": "0-1", "cpuset_mems": "0",
        "memory": -1, "memory_reservation": -1, "memory_swap": -1,
        "blkio_weight": res.io_weight_to_blkio(100), "pids_limit": -1,
    }


def test_read_kernel_v2_limits_set(tmp_path):
    values = res.read_kernel(_v2_tree(tmp_path, **{
        "cpu.weight": "39\n",
        "cpu.max": "50000 100000\n",
        "cpuset.cpus": "0\n",
        "cpuset.mems": "0\n",
        "memory.max": "134217728\n",
        "memory.low": "67108864\n",
        "memory.swap.max": "134217728\n",
        "io.weight": "default 4950\n",
        "pids.max": "64\n",
    }))
    assert values == {
        "cpu_shares": 39, "cpu_period": 100000, "cpu_quota": 50000,
        "cpuset_cpus": "0", "cpuset_mems": "0",
        "memory": 134217728, "memory_reservation": 67108864,
        "memory_swap": 268435456,  # memory.max + memory.swap.max
        "blkio_weight": 500, "pids_limit": 64,
    }


@pytest.mark.parametrize("cpu_max, quota, period", [
    ("max 100000", -1, 100000),
    ("50000 100000", 50000, 100000),
    ("max 1000000", -1, 1000000),
    ("1000 1000", 1000, 1000),
])
def test_read_kernel_v2_cpu_max(tmp_path, cpu_max, quota, period):
    values = res.read_kernel(_v2_tree(tmp_path, **{"cpu.max": cpu_max + "\n"}))
    assert (values["cpu_quota"], values["cpu_period"]) == (quota, period)


@pytest.mark.parametrize("memory_max, swap_max, memory, memory_swap", [
    ("max", "max", -1, -1),
    ("134217728", "max", 134217728, -1),
    ("134217728", "0", 134217728, 134217728),
    ("134217728", "134217728", 134217728, 268435456),
    ("max", "134217728", -1, -1),  # no memory limit: memory plus swap is not limited either
])
def test_read_kernel_v2_memory_swap(tmp_path, memory_max, swap_max, memory, memory_swap):
    values = res.read_kernel(_v2_tree(tmp_path, **{"memory.max": memory_max + "\n",
                                                   "memory.swap.max": swap_max + "\n"}))
    assert values["memory"] == memory
    assert values["memory_swap"] == memory_swap


def test_read_kernel_v2_memory_swap_round_trip(tmp_path):
    # runc turns memory_swap 256m with memory 128m into memory.swap.max = 128m.
    values = res.read_kernel(_v2_tree(tmp_path, **{"memory.max": "%d\n" % (128 * MIB),
                                                   "memory.swap.max": "%d\n" % (128 * MIB)}))
    assert values["memory_swap"] == res.to_kernel("memory_swap", 256 * MIB, 2)
    assert values["memory"] == res.to_kernel("memory", 128 * MIB, 2)


def test_read_kernel_v2_without_swap_accounting(tmp_path):
    values = res.read_kernel(_v2_tree(tmp_path, **{"memory.swap.max": None}))
    assert "memory_swap" not in values
    assert values["memory"] == -1


def test_read_kernel_v2_memory_low_max(tmp_path):
    assert res.read_kernel(_v2_tree(tmp_path, **{"memory.low": "max\n"}))["memory_reservation"] == -1


def test_read_kernel_v2_cpu_weight_round_trip(tmp_path):
    values = res.read_kernel(_v2_tree(tmp_path, **{"cpu.weight": "39\n"}))
    assert values["cpu_shares"] == res.to_kernel("cpu_shares", 1024, 2)


def test_read_kernel_v2_cpuset_set_on_the_container(tmp_path):
    values = res.read_kernel(_v2_tree(tmp_path, **{
        "cpuset.cpus": "1\n", "cpuset.cpus.effective": "1\n",
        "cpuset.mems": "0\n", "cpuset.mems.effective": "0\n"}))
    assert values["cpuset_cpus"] == "1"
    assert values["cpuset_mems"] == "0"


def test_read_kernel_v2_cpuset_not_set_reads_the_effective_set(tmp_path):
    # A fresh v2 cgroup has an empty cpuset.cpus/cpuset.mems (it inherits its parent's); what it
    # may use is in cpuset.cpus.effective. The limit exists on the host (the module must not say
    # "cpuset_cpus cannot be set on this host") and is what the container runs on.
    values = res.read_kernel(_v2_tree(tmp_path))
    assert values.get("cpuset_cpus") == "0-1"
    assert values.get("cpuset_mems") == "0"


def test_read_kernel_v2_without_the_cpuset_controller(tmp_path):
    values = res.read_kernel(_v2_tree(tmp_path, **{
        "cpuset.cpus": None, "cpuset.cpus.effective": None,
        "cpuset.mems": None, "cpuset.mems.effective": None}))
    assert "cpuset_cpus" not in values
    assert "cpuset_mems" not in values


@pytest.mark.parametrize("content, weight", [
    ("default 100\n", 20),   # the kernel's default io.weight, in the 10-1000 blkio scale
    ("default 4950\n", 500),
])
def test_read_kernel_v2_io_weight_default_line(tmp_path, content, weight):
    assert res.read_kernel(_v2_tree(tmp_path, **{"io.weight": content}))["blkio_weight"] == weight


def test_read_kernel_v2_io_weight_with_per_device_lines(tmp_path):
    # io.weight lists per-device overrides after the default line ("MAJ:MIN weight"); the
    # container's weight is the default one, not the last device's.
    content = "default 100\n8:0 200\n8:16 300\n"
    assert res.read_kernel(_v2_tree(tmp_path, **{"io.weight": content}))["blkio_weight"] == 20


def test_read_kernel_v2_prefers_io_bfq_weight(tmp_path):
    values = res.read_kernel(_v2_tree(tmp_path, **{"io.bfq.weight": "default 500\n",
                                                   "io.weight": "default 100\n"}))
    assert values["blkio_weight"] == 500


def test_read_kernel_v2_io_bfq_weight_round_trip(tmp_path):
    # runc (libcontainer/cgroups/fs2/io.go) writes blkio_weight to io.bfq.weight as it is (10-1000)
    # and converts it to 1-10000 only when it falls back to io.weight. After blkio_weight=500 on a
    # bfq host the file holds "default 500": the module must see that as no change.
    values = res.read_kernel(_v2_tree(tmp_path, **{"io.bfq.weight": "default 500\n",
                                                   "io.weight": None}))
    assert values["blkio_weight"] == res.to_kernel("blkio_weight", 500, 2)


def test_read_kernel_v2_io_weight_round_trip(tmp_path):
    values = res.read_kernel(_v2_tree(tmp_path, **{"io.weight": "default 4950\n"}))
    assert values["blkio_weight"] == res.to_kernel("blkio_weight", 500, 2)


def test_read_kernel_v2_without_io_weights(tmp_path):
    values = res.read_kernel(_v2_tree(tmp_path, **{"io.weight": None}))
    assert "blkio_weight" not in values


def test_read_kernel_v2_ignores_a_v1_style_tree(tmp_path):
    # v2 is decided by cgroup.controllers at the root, not by the "0::" line.
    files = _v1_tree(tmp_path)
    assert files.version == 1
    assert files.v2 == "/mycontainer"
    assert res.read_kernel(files)["memory"] == -1
