# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""spec.py: runc's default spec, checking the task's settings, the image's defaults, users, the
deep merge and the config document."""

from __future__ import annotations

import json

import pytest

from ansible_collections.oci.runtime.plugins.module_utils._runtime import spec as S
from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import BundleError

ONLINE = dict(online_cpus="0-3", online_mems="0")
PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n# x:x:7:7\nweird:x:abc:1::/:/bin/sh\n"
GROUP = "root:x:0:\nstaff:x:50:app\napp:x:1001:\n"


READ = {"etc/passwd": PASSWD, "etc/group": GROUP}.get  # read_file of a root filesystem


def settings(**params):
    return S.check_settings(params, **ONLINE)


# --- the default spec -----------------------------------------------------------------------------

def test_default_spec_is_runc_spec_without_terminal():
    config = S.default_spec()
    assert config["ociVersion"] == "1.0.2-dev"
    assert config["process"]["terminal"] is False
    assert config["process"]["args"] == ["sh"]
    assert config["process"]["env"] == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                        "TERM=xterm"]
    assert list(config["process"]["capabilities"]) == ["bounding", "effective", "permitted", "ambient"]
    assert config["root"] == {"path": "rootfs", "readonly": True}
    assert [m["destination"] for m in config["mounts"]] == [
        "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"]
    assert [n["type"] for n in config["linux"]["namespaces"]] == ["pid", "network", "ipc", "uts", "mount"]
    assert list(config) == ["ociVersion", "process", "root", "hostname", "mounts", "linux"]


def test_default_spec_is_a_fresh_copy():
    first = S.default_spec()
    first["process"]["args"].append("x")
    first["mounts"].clear()
    assert S.default_spec()["process"]["args"] == ["sh"]
    assert len(S.default_spec()["mounts"]) == 7


def test_config_bytes_as_runc_writes_them():
    data = S.config_bytes({"a": {"b": [1]}})
    assert data == b'{\n\t"a": {\n\t\t"b": [\n\t\t\t1\n\t\t]\n\t}\n}'
    assert json.loads(S.config_bytes(S.default_spec())) == S.default_spec()


# --- deep merge, env ------------------------------------------------------------------------------

def test_deep_merge():
    base = {"a": {"b": 1, "c": [1, 2], "d": {"e": 1}}, "f": 1, "g": 2}
    override = {"a": {"c": [3], "d": {"x": 2}, "new": True}, "f": None, "h": {"i": 1}}
    merged = S.deep_merge(base, override)
    assert merged == {"a": {"b": 1, "c": [3], "d": {"e": 1, "x": 2}, "new": True}, "g": 2, "h": {"i": 1}}
    assert base == {"a": {"b": 1, "c": [1, 2], "d": {"e": 1}}, "f": 1, "g": 2}
    merged["h"]["i"] = 5
    assert override["h"]["i"] == 1
    assert S.deep_merge({"a": 1}, {"a": {"b": 1}}) == {"a": {"b": 1}}
    assert S.deep_merge({"a": {"b": 1}}, {"a": 2}) == {"a": 2}
    assert S.deep_merge({}, {"gone": None}) == {}


def test_merge_env_keeps_places_and_removes():
    base = ["PATH=/bin", "TERM=xterm", "A=1"]
    assert S.merge_env(base, {"TERM": "dumb", "B": "2", "A": None}) == ["PATH=/bin", "TERM=dumb", "B=2"]
    assert S.merge_env(base, ["PATH=/x:/y", "C=a=b", "D"]) == ["PATH=/x:/y", "TERM=xterm", "A=1", "C=a=b", "D="]
    assert base == ["PATH=/bin", "TERM=xterm", "A=1"]


# --- checking the settings ------------------------------------------------------------------------

def test_check_settings_nothing_given():
    assert settings() == dict.fromkeys(S.SETTINGS)


@pytest.mark.parametrize("params, field, words", [
    ({"args": []}, "args", "must not be empty"),
    ({"args": "sh"}, "args", "must be a list"),
    ({"args": [["sh"]]}, "args", "must be a string"),
    ({"env": {"A=B": "1"}}, "env", "'A=B' is not valid"),
    ({"env": {"": "1"}}, "env", "is not valid"),
    ({"env": {"A": {"x": 1}}}, "env", "the value of A"),
    ({"env": ["A=1"]}, "env", "must be a dictionary"),
    ({"cwd": "app"}, "cwd", "absolute"),
    ({"hostname": "a b"}, "hostname", "not a valid host name"),
    ({"hostname": "x" * 65}, "hostname", "not a valid host name"),
    ({"user": "a:b:c"}, "user", "uid[:gid]"),
    ({"user": ""}, "user", "uid[:gid]"),
    ({"user": "1000:"}, "user", "uid[:gid]"),
    ({"readonly_rootfs": "yes"}, "readonly_rootfs", "true or false"),
    ({"mounts": [{"type": "tmpfs"}]}, "mounts[0]", "destination"),
    ({"mounts": [{"destination": "data"}]}, "mounts[0]", "destination"),
    ({"mounts": ["/data"]}, "mounts[0]", "dictionary"),
    ({"mounts": [{"destination": "/a"}, {"destination": "/b", "type": "bind", "source": "rel"}]},
     "mounts[1]", "bind mount needs source"),
    ({"mounts": [{"destination": "/b", "source": "/x", "options": ["rbind", 1]}]}, "mounts[0]", "options"),
    ({"mounts": [{"destination": "/b", "source": 5}]}, "mounts[0]", "source must be a string"),
    ({"namespaces": ["pid", "bogus"]}, "namespaces[1]", "'bogus' is not a namespace type"),
    ({"namespaces": ["net", "network"]}, "namespaces[1]", "given twice"),
    ({"namespaces": [{"type": "net", "path": "proc/1/ns/net"}]}, "namespaces[0]", "absolute"),
    ({"namespaces": [{"type": "net", "mode": 1}]}, "namespaces[0]", "unknown keys mode"),
    ({"namespaces": [5]}, "namespaces[0]", "namespace name"),
    ({"capabilities": ["CAP_FLY"]}, "capabilities", "'CAP_FLY' is not a Linux capability"),
    ({"capabilities": [""]}, "capabilities", "not a capability name"),
    ({"resources": {"memry": "1g"}}, "resources", "unknown limit memry"),
    ({"resources": {"kernel_memory": "1g"}}, "resources", "unknown limit kernel_memory"),
    ({"resources": {"memory": "lots"}}, "resources", "memory: 'lots' is not a size"),
    ({"resources": {"cpu_shares": 1}}, "resources", "cpu_shares: 1 is outside"),
    ({"resources": {"cpuset_cpus": "7"}}, "resources", "cpuset_cpus: 7 not online"),
    ({"resources": {"memory": "1g", "memory_swap": "512m"}}, "resources", "at least memory"),
    ({"resources": []}, "resources", "must be a dictionary"),
    ({"annotations": {"a": ["x"]}}, "annotations", "the value of a"),
    ({"spec": ["x"]}, "spec", "must be a dictionary"),
])
def test_check_settings_refuses(params, field, words):
    with pytest.raises(BundleError) as err:
        settings(**params)
    assert err.value.msg.startswith(field + ": "), err.value.msg
    assert words in err.value.msg
    assert err.value.details["field"] == field


def test_check_settings_normalises():
    checked = settings(
        args=["sh", "-c", 5], env={"A": 1, "B": None, "C": True}, user=" 1000:50 ",
        namespaces=["pid", "net", {"type": "mnt"}, {"type": "ipc", "path": "/proc/1/ns/ipc"}],
        capabilities=["net_admin", "CAP_NET_ADMIN", "SYS_PTRACE"],
        resources={"memory": "256m", "memory_swap": "512m", "cpu_shares": 512, "cpu_quota": 50000,
                   "cpu_period": 100000, "cpuset_cpus": "0-1", "cpuset_mems": "0", "pids_limit": 64,
                   "blkio_weight": 300, "memory_reservation": "128m"},
        annotations={"x": 1})
    assert checked["args"] == ["sh", "-c", "5"]
    assert checked["env"] == {"A": "1", "B": None, "C": "True"}
    assert checked["user"] == "1000:50"
    assert checked["namespaces"] == [{"type": "pid"}, {"type": "network"}, {"type": "mount"},
                                     {"type": "ipc", "path": "/proc/1/ns/ipc"}]
    assert checked["capabilities"] == ["CAP_NET_ADMIN", "CAP_SYS_PTRACE"]
    assert checked["resources"] == {
        "memory": {"limit": 256 << 20, "reservation": 128 << 20, "swap": 512 << 20},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0"},
        "blockIO": {"weight": 300},
        "pids": {"limit": 64},
    }
    assert checked["annotations"] == {"x": "1"}


def test_capabilities_all():
    assert settings(capabilities=["ALL", "kill"])["capabilities"] == list(S.KNOWN_CAPABILITIES)


# --- the image's defaults and the config ----------------------------------------------------------

IMAGE_CONFIG = {
    "architecture": "amd64", "os": "linux",
    "config": {"Entrypoint": ["/bin/entry"], "Cmd": ["serve", "--port", "80"],
               "Env": ["PATH=/app/bin:/bin", "GREETING=hi"], "WorkingDir": "/srv", "User": "app"},
    "rootfs": {"type": "layers", "diff_ids": []},
}


def test_image_defaults():
    assert S.image_defaults(IMAGE_CONFIG) == {
        "args": ["/bin/entry", "serve", "--port", "80"], "env": ["PATH=/app/bin:/bin", "GREETING=hi"],
        "cwd": "/srv", "user": "app"}
    assert S.image_defaults({}) == {"args": None, "env": [], "cwd": None, "user": None}
    assert S.image_defaults({"config": {"Cmd": ["sh"], "User": ""}})["user"] is None


def test_build_config_defaults_only():
    config = S.build_config(settings(), read_file=READ)
    expected = S.default_spec()
    assert config == expected


def test_build_config_from_image():
    config = S.build_config(settings(), image_config=IMAGE_CONFIG, rootfs_digest="sha256:abc",
                            read_file=READ)
    process = config["process"]
    assert process["args"] == ["/bin/entry", "serve", "--port", "80"]
    assert process["env"] == ["PATH=/app/bin:/bin", "TERM=xterm", "GREETING=hi"]
    assert process["cwd"] == "/srv"
    assert process["user"] == {"uid": 1000, "gid": 1001}
    assert config["annotations"] == {S.ROOTFS_ANNOTATION: "sha256:abc"}


def test_build_config_parameters_override_the_image():
    checked = settings(args=["sh"], env={"GREETING": "hello", "TERM": None, "NEW": "1"}, cwd="/tmp",
                       user="0:0")
    config = S.build_config(checked, image_config=IMAGE_CONFIG,
                            read_file=lambda path: pytest.fail("numeric uid:gid reads nothing"))
    process = config["process"]
    assert process["args"] == ["sh"]
    assert process["env"] == ["PATH=/app/bin:/bin", "GREETING=hello", "NEW=1"]
    assert process["cwd"] == "/tmp"
    assert process["user"] == {"uid": 0, "gid": 0}


def test_build_config_image_without_command_and_relative_workdir():
    with pytest.raises(BundleError) as err:
        S.build_config(settings(spec={"process": {"args": None}}), read_file=READ)
    assert "no program to run" in err.value.msg
    with pytest.raises(BundleError) as err:
        S.build_config(settings(), image_config={"config": {"WorkingDir": "srv"}}, read_file=READ)
    assert "WorkingDir" in err.value.msg
    # an image without Entrypoint/Cmd keeps runc's default sh
    assert S.build_config(settings(), image_config={"config": {}})["process"]["args"] == ["sh"]


def test_build_config_settings():
    checked = settings(
        hostname="web", readonly_rootfs=False, capabilities=["NET_ADMIN"],
        mounts=[{"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["size=1g"]},
                {"destination": "/data", "type": "bind", "source": "/srv/data", "options": ["rbind"]}],
        resources={"memory": "64m", "pids_limit": 10}, annotations={"app": "web"},
        spec={"process": {"noNewPrivileges": False, "rlimits": []}, "linux": {"maskedPaths": None},
              "annotations": {"extra": "1"}})
    config = S.build_config(checked, rootfs_digest="sha256:r")
    assert config["hostname"] == "web"
    assert config["root"]["readonly"] is False
    assert config["process"]["capabilities"] == {name: ["CAP_NET_ADMIN"] for name in S.CAPABILITY_SETS}
    destinations = [m["destination"] for m in config["mounts"]]
    assert destinations == ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys",
                            "/sys/fs/cgroup", "/data"]
    assert config["mounts"][3]["options"] == ["size=1g"]
    assert config["linux"]["resources"] == {"devices": [{"allow": False, "access": "rwm"}],
                                            "memory": {"limit": 64 << 20}, "pids": {"limit": 10}}
    assert config["annotations"] == {"app": "web", S.ROOTFS_ANNOTATION: "sha256:r", "extra": "1"}
    assert config["process"]["noNewPrivileges"] is False
    assert config["process"]["rlimits"] == []
    assert "maskedPaths" not in config["linux"]
    assert config["linux"]["readonlyPaths"]


def test_rootfs_annotation_wins_over_annotations():
    config = S.build_config(settings(annotations={S.ROOTFS_ANNOTATION: "mine"}), rootfs_digest="sha256:r")
    assert config["annotations"][S.ROOTFS_ANNOTATION] == "sha256:r"


def test_namespaces_without_uts():
    config = S.build_config(settings(namespaces=["pid", "mount"]))
    assert "hostname" not in config
    assert config["linux"]["namespaces"] == [{"type": "pid"}, {"type": "mount"}]
    with pytest.raises(BundleError) as err:
        S.build_config(settings(namespaces=["pid", "mount"], hostname="web"))
    assert err.value.msg.startswith("hostname: ")


def test_effective_user_and_bad_image_user():
    assert S.effective_user(settings(user="5"), IMAGE_CONFIG) == ("5", "user")
    assert S.effective_user(settings(), IMAGE_CONFIG) == ("app", "the image's User")
    assert S.effective_user(settings(), None) == (None, "the image's User")
    with pytest.raises(BundleError) as err:
        S.build_config(settings(), image_config={"config": {"User": "a:b:c"}})
    assert "the image's User 'a:b:c'" in err.value.msg


def test_config_is_deterministic():
    checked = settings(env={"B": "2", "A": "1"}, args=["x"], resources={"memory": "1g"})
    first = S.config_bytes(S.build_config(checked, image_config=IMAGE_CONFIG, rootfs_digest="d",
                                          read_file=READ))
    second = S.config_bytes(S.build_config(checked, image_config=IMAGE_CONFIG, rootfs_digest="d",
                                           read_file=READ))
    assert first == second
