# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bundle module's adapter on real files in tmp_path: build, idempotency without rewrites,
config-only and rootfs-only changes, failed builds that leave the previous bundle untouched, check
mode, diff, removal."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile

import pytest

from ansible_collections.oci.runtime.plugins.module_utils._module.bundle import BundleConverger
from ansible_collections.oci.runtime.plugins.module_utils._runtime import rootfs as R
from ansible_collections.oci.runtime.plugins.module_utils._runtime import spec as S
from ansible_collections.oci.runtime.plugins.module_utils._runtime.bundle import load_bundle
from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import BundleError

PASSWD = b"root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/:/bin/sh\n"


def tar_file(path, files, compress=None):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.mtime = 1700000000
            if isinstance(data, tuple):
                info.type, info.linkname = {"sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE}[data[0]], data[1]
                tar.addfile(info)
            elif data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), 0o755
                tar.addfile(info, io.BytesIO(data))
    data = buffer.getvalue()
    with open(path, "wb") as handle:
        handle.write(gzip.compress(data) if compress == "gzip" else data)
    return str(path)


GOOD = [("./", None), ("bin/", None), ("bin/sh", b"#!sh"), ("etc/", None), ("etc/passwd", PASSWD)]


@pytest.fixture
def env(tmp_path):
    class Env(object):
        bundle = str(tmp_path / "bundles" / "one")
        archive = tar_file(tmp_path / "rootfs.tar.gz", GOOD, "gzip")
        archive2 = tar_file(tmp_path / "rootfs2.tar", GOOD + [("bin/extra", b"x")])
        evil = tar_file(tmp_path / "evil.tar", GOOD + [("../../escape", b"x")])

        def run(self, check_mode=False, **params):
            full = {"path": self.bundle, "state": "present", "allow_devices": False,
                    "readonly_rootfs": True}
            full.update(params)
            return BundleConverger(full, check_mode=check_mode).run()

        def snapshot(self):
            """(name -> (inode, mtime_ns)) of what the bundle holds at its top and in rootfs/."""
            seen = {}
            for base in (self.bundle, os.path.join(self.bundle, "rootfs")):
                for name in os.listdir(base):
                    st = os.lstat(os.path.join(base, name))
                    seen[os.path.join(base, name)] = (st.st_ino, st.st_mtime_ns)
            st = os.lstat(os.path.join(self.bundle, "rootfs"))
            seen["rootfs"] = (st.st_ino, st.st_mtime_ns)
            return seen

        def config_bytes(self):
            with open(os.path.join(self.bundle, "config.json"), "rb") as handle:
                return handle.read()
    return Env()


def test_build_then_nothing_to_do(env):
    first = env.run(rootfs_archive=env.archive, args=["sh", "-c", "true"])
    assert first["changed"] is True
    assert first["actions"][0] == "create bundle directory"
    assert first["actions"][1].startswith("build rootfs: from archive sha256:")
    assert first["actions"][2:] == ["write config.json", "write metadata"]
    loaded = load_bundle(env.bundle)
    assert first["config_digest"] == loaded.digest
    assert first["rootfs_digest"] == "sha256:" + hashlib.sha256(open(env.archive, "rb").read()).hexdigest()
    assert loaded.config["annotations"][S.ROOTFS_ANNOTATION] == first["rootfs_digest"]
    assert "image_digest" not in first
    assert first["diff"]["before"] == "" and json.loads(first["diff"]["after"]) == loaded.config
    assert oct(os.stat(env.bundle).st_mode & 0o777) == "0o700"
    assert sorted(os.listdir(env.bundle)) == [".oci-runtime-bundle.json", "config.json", "rootfs"]

    before = env.snapshot()
    second = env.run(rootfs_archive=env.archive, args=["sh", "-c", "true"])
    assert second == {"changed": False, "path": env.bundle, "actions": [],
                      "config_digest": first["config_digest"], "rootfs_digest": first["rootfs_digest"]}
    assert env.snapshot() == before


def test_config_change_keeps_the_rootfs(env):
    env.run(rootfs_archive=env.archive)
    rootfs_inode = os.lstat(os.path.join(env.bundle, "rootfs")).st_ino
    old = env.config_bytes()
    result = env.run(rootfs_archive=env.archive, env={"A": "1"}, user="app")
    assert result["actions"] == ["write config.json", "write metadata"]
    assert os.lstat(os.path.join(env.bundle, "rootfs")).st_ino == rootfs_inode
    config = load_bundle(env.bundle).config
    assert "A=1" in config["process"]["env"]
    assert config["process"]["user"] == {"uid": 1000, "gid": 1001}
    assert result["diff"]["before"] == old.decode()
    assert result["config_digest"] == load_bundle(env.bundle).digest


def test_rootfs_change_swaps(env):
    first = env.run(rootfs_archive=env.archive)
    old_inode = os.lstat(os.path.join(env.bundle, "rootfs")).st_ino
    result = env.run(rootfs_archive=env.archive2)
    assert result["actions"][0].startswith("build rootfs")
    assert result["actions"][1:] == ["write config.json", "write metadata"]
    assert result["config_digest"] != first["config_digest"]  # the rootfs annotation changed
    assert os.lstat(os.path.join(env.bundle, "rootfs")).st_ino != old_inode
    assert os.path.exists(os.path.join(env.bundle, "rootfs", "bin", "extra"))
    assert sorted(os.listdir(env.bundle)) == [".oci-runtime-bundle.json", "config.json", "rootfs"]


def test_missing_rootfs_is_rebuilt(env):
    env.run(rootfs_archive=env.archive)
    R.discard(os.path.join(env.bundle, "rootfs"))
    result = env.run(rootfs_archive=env.archive)
    assert [a.split(":")[0] for a in result["actions"]] == ["build rootfs"]
    assert os.path.exists(os.path.join(env.bundle, "rootfs", "bin", "sh"))


def test_hand_edited_config_is_rewritten(env):
    env.run(rootfs_archive=env.archive)
    with open(os.path.join(env.bundle, "config.json"), "a") as handle:
        handle.write(" ")
    assert env.run(rootfs_archive=env.archive)["actions"] == ["write config.json"]


@pytest.mark.parametrize("bad", ["evil_archive", "unknown_user", "damaged"])
def test_failed_build_leaves_the_previous_bundle(env, tmp_path, bad):
    env.run(rootfs_archive=env.archive)
    before = env.snapshot()
    config = env.config_bytes()
    if bad == "evil_archive":
        params = {"rootfs_archive": env.evil}
        words = "'../../escape'"
    elif bad == "unknown_user":
        params = {"rootfs_archive": env.archive2, "user": "nobody"}
        words = "no such user"
    else:
        data = open(env.archive, "rb").read()
        damaged = tmp_path / "damaged.tar.gz"
        damaged.write_bytes(data[:len(data) // 2])
        params = {"rootfs_archive": str(damaged)}
        words = "damaged.tar.gz"
    with pytest.raises(BundleError) as err:
        env.run(**params)
    assert words in err.value.msg
    assert env.snapshot() == before
    assert env.config_bytes() == config
    assert not R.leftovers(env.bundle)


def test_check_mode_writes_nothing(env):
    predicted = env.run(check_mode=True, rootfs_archive=env.archive, user="app")
    assert predicted["changed"] is True
    assert not os.path.exists(env.bundle)
    built = env.run(rootfs_archive=env.archive, user="app")
    assert predicted["config_digest"] == built["config_digest"]
    assert predicted["actions"] == built["actions"]
    before = env.snapshot()
    again = env.run(check_mode=True, rootfs_archive=env.archive2, user="app")
    assert again["changed"] is True and again["actions"][0].startswith("build rootfs")
    assert env.snapshot() == before
    assert env.run(rootfs_archive=env.archive2, user="app")["config_digest"] == again["config_digest"]
    assert env.run(check_mode=True, rootfs_archive=env.archive2, user="app")["changed"] is False


def test_rootfs_dir_source(env, tmp_path):
    source = tmp_path / "tree"
    (source / "bin").mkdir(parents=True)
    (source / "bin" / "sh").write_bytes(b"sh")
    first = env.run(rootfs_dir=str(source))
    assert first["changed"] and os.path.exists(os.path.join(env.bundle, "rootfs", "bin", "sh"))
    assert env.run(rootfs_dir=str(source))["changed"] is False
    (source / "bin" / "new").write_bytes(b"n")
    assert env.run(rootfs_dir=str(source))["actions"][0].startswith("build rootfs: from directory")
    with pytest.raises(BundleError) as err:
        env.run(rootfs_dir=os.path.join(env.bundle, "rootfs"))
    assert "must not contain one another" in err.value.msg


def test_image_source(env, tmp_path):
    layout = tmp_path / "layout"
    (layout / "blobs" / "sha256").mkdir(parents=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')

    def blob(data, media_type):
        digest = hashlib.sha256(data).hexdigest()
        (layout / "blobs" / "sha256" / digest).write_bytes(data)
        return {"mediaType": media_type, "digest": "sha256:" + digest, "size": len(data)}
    layer_path = tar_file(tmp_path / "layer.tar", GOOD)
    layer = blob(gzip.compress(open(layer_path, "rb").read()), "application/vnd.oci.image.layer.v1.tar+gzip")
    config = blob(json.dumps({"os": "linux", "config": {"Cmd": ["sh"], "User": "app", "Env": ["X=1"]},
                              "rootfs": {"diff_ids": []}}).encode(),
                  "application/vnd.oci.image.config.v1+json")
    manifest = blob(json.dumps({"schemaVersion": 2, "config": config, "layers": [layer],
                                "mediaType": "application/vnd.oci.image.manifest.v1+json"}).encode(),
                    "application/vnd.oci.image.manifest.v1+json")
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        dict(manifest, annotations={"org.opencontainers.image.ref.name": "v1"})]}))
    predicted = env.run(check_mode=True, image=str(layout))  # the user is looked up in the layer
    result = env.run(image=str(layout), image_ref="v1")
    assert result["image_digest"] == result["rootfs_digest"] == manifest["digest"]
    assert predicted["config_digest"] == result["config_digest"]
    config_doc = load_bundle(env.bundle).config
    assert config_doc["process"]["user"] == {"uid": 1000, "gid": 1001}
    assert "X=1" in config_doc["process"]["env"]
    assert env.run(image=str(layout))["changed"] is False


def test_bad_input_creates_nothing(env, tmp_path):
    for params, words in [
        ({"rootfs_archive": str(tmp_path / "missing.tar")}, "does not exist"),
        ({"rootfs_archive": env.archive, "args": []}, "args: must not be empty"),
        ({"rootfs_archive": env.archive, "rootfs_dir": str(tmp_path)}, "exactly one of"),
        ({}, "exactly one of"),
        ({"rootfs_archive": env.archive, "image_ref": "x"}, "image_ref needs image"),
        ({"image": str(tmp_path)}, "not an OCI image layout"),
    ]:
        with pytest.raises(BundleError) as err:
            env.run(**params)
        assert words in err.value.msg, params
    assert not os.path.exists(env.bundle)
    with pytest.raises(BundleError) as err:
        BundleConverger({"path": "relative", "state": "present"}).run()
    assert "path must be an absolute path" in err.value.msg
    with pytest.raises(BundleError):
        BundleConverger({"path": "/", "state": "absent"}).run()


def test_absent(env, tmp_path):
    assert env.run(state="absent") == {"changed": False, "path": env.bundle, "actions": []}
    env.run(rootfs_archive=env.archive)
    config = env.config_bytes()
    predicted = env.run(state="absent", check_mode=True)
    assert predicted["changed"] is True and os.path.isdir(env.bundle)
    removed = env.run(state="absent")
    assert removed["actions"] == ["remove bundle"]
    assert removed["diff"]["before"] == config.decode() and removed["diff"]["after"] == ""
    assert not os.path.exists(env.bundle)
    assert env.run(state="absent")["changed"] is False


@pytest.mark.parametrize("kind", ["plain_dir", "file", "symlink"])
def test_absent_refuses_what_is_not_a_bundle(tmp_path, kind):
    target = tmp_path / "target"
    if kind == "plain_dir":
        target.mkdir()
        (target / "precious").write_text("x")
        words = "does not look like a bundle"
    elif kind == "file":
        target.write_text("x")
        words = "not a directory"
    else:
        (tmp_path / "real").mkdir()
        (tmp_path / "real" / "config.json").write_text("{}")
        target.symlink_to(tmp_path / "real")
        words = "symbolic link"
    with pytest.raises(BundleError) as err:
        BundleConverger({"path": str(target), "state": "absent"}).run()
    assert words in err.value.msg
    assert os.path.lexists(target)


def test_leftovers_of_an_interrupted_run_are_removed(env):
    env.run(rootfs_archive=env.archive)
    os.mkdir(os.path.join(env.bundle, "rootfs.new-abc"))
    os.mkdir(os.path.join(env.bundle, "rootfs.old-def"))
    assert env.run(rootfs_archive=env.archive)["changed"] is False
    assert sorted(os.listdir(env.bundle)) == [".oci-runtime-bundle.json", "config.json", "rootfs"]
