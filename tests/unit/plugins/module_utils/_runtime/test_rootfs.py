# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""rootfs.py: sources and their digests, building next to the old tree and swapping it in, the
metadata and config files, and the bundle directory's checks and lock (real files in tmp dirs)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import tarfile

import pytest

from ansible_collections.oci.runtime.plugins.module_utils._runtime import rootfs as R
from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import BundleError, LockTimeoutError

PASSWD = b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"


def _tar(path, files):
    """A tar archive at ``path`` holding ``files`` (name -> bytes; a name ending in / is a dir)."""
    with tarfile.open(str(path), "w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name.rstrip("/"))
            info.mtime = 1700000000
            if name.endswith("/"):
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                archive.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                archive.addfile(info, io.BytesIO(data))
    return str(path)


@pytest.fixture
def bundle(tmp_path):
    path = tmp_path / "bundle"
    path.mkdir()
    return str(path)


@pytest.fixture
def archive(tmp_path):
    return _tar(tmp_path / "rootfs.tar", {"etc/": None, "etc/passwd": PASSWD, "bin/": None,
                                          "bin/hello": b"#!/bin/sh\necho hi\n"})


def _tree(path, files):
    for name, data in files.items():
        full = os.path.join(path, name)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as handle:
            handle.write(data)
    return str(path)


# --- sources -----------------------------------------------------------------------------------------

def test_archive_source_digest_build_and_user_files(archive, bundle):
    source = R.ArchiveSource(archive)
    with open(archive, "rb") as handle:
        assert source.digest == "sha256:" + hashlib.sha256(handle.read()).hexdigest()
    assert source.kind == "archive" and source.image_config is None and source.image_digest is None
    assert source.read_files(["etc/passwd", "etc/group"]) == {"etc/passwd": PASSWD, "etc/group": None}
    new = R.build_rootfs(bundle, source, allow_devices=False)
    assert os.path.basename(new).startswith(R.NEW_PREFIX) and os.path.dirname(new) == bundle
    with open(os.path.join(new, "bin", "hello"), "rb") as handle:
        assert handle.read() == b"#!/bin/sh\necho hi\n"
    assert R.user_file_reader(new)("etc/passwd") == PASSWD.decode()


@pytest.mark.parametrize("path, words", [
    ("relative.tar", "must be an absolute path"),
    ("/nonexistent/rootfs.tar", "does not exist or is not a file"),
])
def test_archive_source_refuses(path, words):
    with pytest.raises(BundleError) as info:
        R.ArchiveSource(path)
    assert words in info.value.msg and info.value.details["field"] == "rootfs_archive"


def test_directory_source_digest_follows_the_listing(tmp_path, bundle):
    tree = _tree(tmp_path / "tree", {"etc/passwd": PASSWD, "data": b"one"})
    first = R.DirectorySource(tree, bundle).digest
    assert first == R.DirectorySource(tree, bundle).digest
    _tree(tmp_path / "tree", {"data": b"three"})  # another size
    assert R.DirectorySource(tree, bundle).digest != first
    assert R.DirectorySource(tree, bundle).read_files(["etc/passwd", "etc/group"]) == \
        {"etc/passwd": PASSWD, "etc/group": None}


def test_directory_source_refuses_nesting_with_the_bundle(tmp_path, bundle):
    os.makedirs(os.path.join(bundle, "inside"))
    for path in (os.path.join(bundle, "inside"), bundle, str(tmp_path)):
        with pytest.raises(BundleError) as info:
            R.DirectorySource(path, bundle)
        assert "must not contain one another" in info.value.msg
    with pytest.raises(BundleError):
        R.DirectorySource(str(tmp_path / "missing"), bundle)
    with pytest.raises(BundleError):
        R.DirectorySource("tree", bundle)


@pytest.mark.parametrize("params, words", [
    ({}, "give exactly one of rootfs_archive, rootfs_dir and image (got none)"),
    ({"rootfs_archive": "/a.tar", "rootfs_dir": "/d"}, "(got rootfs_archive, rootfs_dir)"),
    ({"rootfs_dir": "/d", "image_ref": "latest"}, "image_ref needs image"),
])
def test_make_source_needs_exactly_one(params, words, bundle):
    with pytest.raises(BundleError) as info:
        R.make_source(params, bundle)
    assert words in info.value.msg


def test_make_source_picks_the_given_kind(archive, tmp_path, bundle):
    assert isinstance(R.make_source({"rootfs_archive": archive}, bundle), R.ArchiveSource)
    tree = _tree(tmp_path / "tree", {"f": b"x"})
    assert isinstance(R.make_source({"rootfs_dir": tree, "image": None}, bundle), R.DirectorySource)


def test_source_file_reader_reads_the_source_once(archive):
    source = R.ArchiveSource(archive)
    calls = []
    real = source.read_files
    source.read_files = lambda names: calls.append(names) or real(names)
    read = R.source_file_reader(source)
    assert read("etc/passwd") == PASSWD.decode() and read("etc/group") is None
    assert read("etc/passwd") == PASSWD.decode()
    assert calls == [R.USER_FILES]


# --- metadata and config.json ------------------------------------------------------------------------

def test_metadata_round_trip(archive, bundle):
    source = R.ArchiveSource(archive)
    meta = R.metadata(source, True, "sha256:cfg")
    assert meta == {"schemaVersion": R.META_SCHEMA, "configDigest": "sha256:cfg",
                    "source": {"type": "archive", "digest": source.digest, "allowDevices": True,
                               "format": R.BUILD_FORMAT}}
    assert R.read_metadata(bundle) is None
    R.write_metadata(bundle, meta)
    assert R.read_metadata(bundle) == meta


@pytest.mark.parametrize("content", ["{broken", "[1, 2]"])
def test_unreadable_metadata_means_rebuild(bundle, content):
    with open(os.path.join(bundle, R.META_FILE), "w") as handle:
        handle.write(content)
    assert R.read_metadata(bundle) is None


def test_config_bytes(bundle, tmp_path):
    assert R.read_config_bytes(bundle) is None
    R.write_config(bundle, b'{"ociVersion": "1.0.2"}')
    assert R.read_config_bytes(bundle) == b'{"ociVersion": "1.0.2"}'
    assert stat.S_IMODE(os.stat(os.path.join(bundle, R.CONFIG_FILE)).st_mode) == 0o644
    other = tmp_path / "other"
    other.mkdir()
    (tmp_path / "elsewhere.json").write_text("{}")
    os.symlink(str(tmp_path / "elsewhere.json"), str(other / R.CONFIG_FILE))
    with pytest.raises(BundleError):
        R.read_config_bytes(str(other))  # never follows a symlink


# --- build and swap ----------------------------------------------------------------------------------

class FailingSource(object):
    """A source that writes a file, then fails."""

    kind = "archive"

    def build(self, writer):
        with open(os.path.join(writer.root, "partial"), "w") as handle:
            handle.write("x")
        raise BundleError("refused member")


def test_a_failed_build_leaves_nothing(bundle):
    with pytest.raises(BundleError):
        R.build_rootfs(bundle, FailingSource(), allow_devices=False)
    assert os.listdir(bundle) == []


def test_swap_into_an_empty_bundle_and_over_an_old_tree(archive, tmp_path, bundle):
    new = R.build_rootfs(bundle, R.ArchiveSource(archive), allow_devices=False)
    assert not R.rootfs_is_dir(bundle)
    R.swap_rootfs(bundle, new)
    assert R.rootfs_is_dir(bundle) and sorted(os.listdir(bundle)) == [R.ROOTFS_DIR]
    tree = _tree(tmp_path / "tree", {"only-in-the-new-one": b"x"})
    newer = R.build_rootfs(bundle, R.DirectorySource(tree, bundle), allow_devices=False)
    R.swap_rootfs(bundle, newer)
    assert os.listdir(os.path.join(bundle, R.ROOTFS_DIR)) == ["only-in-the-new-one"]
    assert os.listdir(bundle) == [R.ROOTFS_DIR]  # the old tree is gone, no leftovers
    assert R.leftovers(bundle) == []


def test_rootfs_that_is_a_symlink_is_not_a_dir(bundle, tmp_path):
    os.symlink(str(tmp_path), os.path.join(bundle, R.ROOTFS_DIR))
    assert not R.rootfs_is_dir(bundle)


def test_leftovers_and_discard(bundle):
    for name in (R.NEW_PREFIX + "a", R.OLD_PREFIX + "b", "rootfs", "config.json"):
        os.makedirs(os.path.join(bundle, name))
    found = R.leftovers(bundle)
    assert [os.path.basename(p) for p in found] == [R.NEW_PREFIX + "a", R.OLD_PREFIX + "b"]
    for path in found:
        R.discard(path)
    assert R.leftovers(bundle) == [] and R.leftovers(os.path.join(bundle, "missing")) == []
    R.discard(os.path.join(bundle, "missing"))  # nothing there: nothing to do


def test_discard_removes_a_symlink_not_its_target(bundle, tmp_path):
    target = tmp_path / "keep"
    target.mkdir()
    (target / "file").write_text("x")
    link = os.path.join(bundle, R.NEW_PREFIX + "x")
    os.symlink(str(target), link)
    R.discard(link)
    assert not os.path.lexists(link) and (target / "file").exists()


# --- the bundle directory ----------------------------------------------------------------------------

@pytest.mark.parametrize("path, expected", [
    ("/srv/b/", "/srv/b"), ("/srv/./b", "/srv/b"), ("relative", None), ("", None), ("/", None), (None, None),
])
def test_check_bundle_path(path, expected):
    if expected is None:
        with pytest.raises(BundleError):
            R.check_bundle_path(path)
    else:
        assert R.check_bundle_path(path) == expected


def test_make_bundle_dir(tmp_path):
    path = str(tmp_path / "a" / "b")
    R.make_bundle_dir(path)
    R.make_bundle_dir(path)  # already there: fine
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
    (tmp_path / "file").write_text("x")
    with pytest.raises(BundleError) as info:
        R.make_bundle_dir(str(tmp_path / "file"))
    assert "is not a directory" in info.value.msg


def test_removable(tmp_path, bundle):
    assert R.removable(str(tmp_path / "missing")) is None
    with pytest.raises(BundleError) as info:
        R.removable(bundle)
    assert "does not look like a bundle" in info.value.msg
    R.write_config(bundle, b"{}")
    assert R.removable(bundle) is True
    os.symlink(bundle, str(tmp_path / "link"))
    with pytest.raises(BundleError) as info:
        R.removable(str(tmp_path / "link"))
    assert "symbolic link" in info.value.msg
    with pytest.raises(BundleError) as info:
        R.removable(os.path.join(bundle, R.CONFIG_FILE))
    assert "not a directory" in info.value.msg


def test_bundle_lock_excludes_a_second_holder(bundle):
    with R.BundleLock(bundle):
        with pytest.raises(LockTimeoutError) as info:
            with R.BundleLock(bundle, timeout=0.05):
                pass
        assert "being built by another run" in info.value.msg
    with R.BundleLock(bundle, timeout=0.05):
        pass  # released


def test_bundle_lock_of_a_missing_dir(tmp_path):
    with pytest.raises(BundleError):
        with R.BundleLock(str(tmp_path / "missing")):
            pass


def test_metadata_is_json(bundle, archive):
    R.write_metadata(bundle, R.metadata(R.ArchiveSource(archive), False, "sha256:x"))
    with open(os.path.join(bundle, R.META_FILE)) as handle:
        assert json.load(handle)["source"]["allowDevices"] is False
