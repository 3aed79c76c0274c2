# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""store.py and layer.py: importing OCI layouts built in tmp_path into a store, the store's layout,
layers unpacked once in overlayfs's format (whiteouts, opaque directories), hostile layers refused
without a trace, garbage collection with images and bundles as roots, concurrent imports."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
import threading

import pytest

from ansible_collections.oci.runtime.plugins.module_utils._runtime import layer as LY
from ansible_collections.oci.runtime.plugins.module_utils._runtime import store as S
from ansible_collections.oci.runtime.plugins.module_utils._runtime.archive import ArchiveError
from ansible_collections.oci.runtime.tests.unit.plugins.module_utils._runtime.layer_tars import tar_of


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def make_layout(path, layers, tag="latest"):
    """An OCI layout with gzip layers from tar bytes; returns the manifest digest."""
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def put(data):
        (blobs / sha(data)[7:]).write_bytes(data)
        return sha(data)
    descriptors = []
    for data in layers:
        blob = gzip.compress(data, mtime=0)
        descriptors.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                            "digest": put(blob), "size": len(blob)})
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                         "rootfs": {"type": "layers", "diff_ids": [sha(d) for d in layers]}}).encode()
    manifest = json.dumps({"schemaVersion": 2,
                           "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": put(config), "size": len(config)},
                           "layers": descriptors}).encode()
    digest = put(manifest)
    (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest,
        "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": tag}}]}))
    return digest


BASE = tar_of([("etc", None), ("etc/passwd", b"root:x:0:0::/:/bin/sh\n"), ("etc/group", b"root:x:0:\n"),
               ("usr", None), ("usr/lib", None), ("usr/lib/a", b"a"), ("usr/lib/b", b"b"),
               ("bin", None), ("bin/sh", b"#!"), ("lib", ("sym", "usr/lib"))])
TOP = tar_of([("etc", None), ("etc/.wh.group", b""), ("usr/lib", None), ("usr/lib/.wh..wh..opq", b""),
              ("usr/lib/c", b"c"), ("srv", None), ("srv/app", b"app"), ("srv/.wh.app", b""),
              ("srv/link", ("link", "srv/app"))])


def add(store, name, layout_path, ref=None):
    store.create()
    with store.lock():
        return store.add(name, S.fetched_from_layout(str(layout_path), ref), "oci:%s" % layout_path)


def test_chain_ids():
    a, b, c = ("sha256:" + x * 64 for x in "abc")
    chains = S.chain_ids([a, b, c])
    assert chains[0] == a
    assert chains[1] == sha(("%s %s" % (a, b)).encode())
    assert chains[2] == sha(("%s %s" % (chains[1], c)).encode())
    assert S.chain_ids([]) == []


def test_import_layout_and_overlay_format(tmp_path):
    digest = make_layout(tmp_path / "layout", [BASE, TOP])
    store = S.Store(str(tmp_path / "store"))
    image, unpacked = add(store, "localhost/app:latest", tmp_path / "layout")
    assert unpacked == 2 and image.digest == digest
    # layout of the store
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o700
    refs = json.loads((tmp_path / "store" / "refs.json").read_text())
    assert refs["images"]["localhost/app:latest"]["digest"] == digest
    assert sorted(os.listdir(tmp_path / "store" / "blobs" / "sha256")) == sorted(
        [digest[7:], image.manifest["config"]["digest"][7:]])  # layer blobs are not kept
    bottom, top = [store.layer_dir(c) for c in image.chain_ids]
    assert os.path.islink(os.path.join(bottom, "lib"))
    # whiteout: a 0:0 character device; opaque: the xattr; the layer's own file kept over its own
    # whiteout; a hard link inside the layer
    st = os.lstat(os.path.join(top, "etc", "group"))
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(os.path.join(top, "usr", "lib"), "trusted.overlay.opaque") == b"y"
    assert open(os.path.join(top, "usr", "lib", "c"), "rb").read() == b"c"
    assert open(os.path.join(top, "srv", "app"), "rb").read() == b"app"
    assert os.stat(os.path.join(top, "srv", "link")).st_ino == os.stat(os.path.join(top, "srv", "app")).st_ino
    info = store.layer_info(image.chain_ids[1])
    assert info["diffId"] == sha(TOP) and info["unpackedSize"] == len(TOP)
    # the merged view the bundle's check mode reads
    assert image.read_files(["etc/passwd", "etc/group", "usr/lib/a", "usr/lib/c", "nope"]) == {
        "etc/passwd": b"root:x:0:0::/:/bin/sh\n", "etc/group": None, "usr/lib/a": None,
        "usr/lib/c": b"c", "nope": None}
    described = store.lookup("localhost/app:latest").describe()
    assert described["name"] == "localhost/app:latest" and described["digest"] == digest
    assert len(described["layers"]) == 2 and described["config"] == {"Cmd": ["sh"]}
    assert described["size"] == sum(l["size"] for l in image.manifest["layers"]) + image.manifest["config"]["size"]


def test_same_layers_unpacked_once(tmp_path):
    make_layout(tmp_path / "one", [BASE])
    make_layout(tmp_path / "two", [BASE, TOP])
    store = S.Store(str(tmp_path / "store"))
    first, unpacked_first = add(store, "localhost/one:latest", tmp_path / "one")
    second, unpacked_second = add(store, "localhost/two:latest", tmp_path / "two")
    assert (unpacked_first, unpacked_second) == (1, 1)
    assert second.chain_ids[0] == first.chain_ids[0]
    again, unpacked = add(store, "localhost/two:latest", tmp_path / "two")
    assert unpacked == 0 and again.digest == second.digest


def test_concurrent_imports_unpack_once(tmp_path):
    make_layout(tmp_path / "layout", [BASE, TOP])
    store = S.Store(str(tmp_path / "store"))
    store.create()
    counts, errors = [], []

    def run():
        try:
            counts.append(add(store, "localhost/app:latest", tmp_path / "layout")[1])
        except Exception as exc:  # pylint: disable=broad-except
            errors.append(exc)
    threads = [threading.Thread(target=run) for _index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and sorted(counts) == [0, 0, 0, 2]
    assert len([n for n in os.listdir(store.path + "/layers") if not n.startswith(".")]) == 2


@pytest.mark.parametrize("entries, why", [
    ([("/etc/passwd", b"x")], "absolute path"),
    ([("../escape", b"x")], "'..' component"),
    ([("a", ("sym", "../../x")), ], "points outside"),
    ([("a", ("link", "/etc/shadow"))], "hard link"),
    ([("a", ("link", "missing"))], "does not exist"),
    ([("d", None), ("d/.wh..", b"")], "not a name"),
])
def test_hostile_layers_refused_and_leave_nothing(tmp_path, entries, why):
    make_layout(tmp_path / "good", [BASE])
    make_layout(tmp_path / "bad", [BASE, tar_of(entries)])
    store = S.Store(str(tmp_path / "store"))
    add(store, "localhost/good:latest", tmp_path / "good")
    before = sorted(os.listdir(store.path + "/layers"))
    with pytest.raises(ArchiveError) as err:
        add(store, "localhost/bad:latest", tmp_path / "bad")
    assert why in err.value.msg
    assert sorted(os.listdir(store.path + "/layers")) == before  # no .new-* left, no half layer
    assert store.lookup("localhost/bad:latest") is None
    assert store.lookup("localhost/good:latest") is not None


def test_overlay_xattrs_from_the_archive_dropped(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("d")
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        info.pax_headers = {"SCHILY.xattr.trusted.overlay.redirect": "/etc"}
        tar.addfile(info)
    make_layout(tmp_path / "layout", [BASE, buffer.getvalue()])
    store = S.Store(str(tmp_path / "store"))
    image, _unpacked = add(store, "localhost/x:latest", tmp_path / "layout")
    assert "trusted.overlay.redirect" not in os.listxattr(os.path.join(store.layer_dir(image.chain_ids[1]), "d"))


def test_corrupt_layer_refused(tmp_path):
    make_layout(tmp_path / "layout", [BASE])
    index = json.loads((tmp_path / "layout" / "index.json").read_text())
    manifest = json.loads((tmp_path / "layout" / "blobs" / "sha256" / index["manifests"][0]["digest"][7:]).read_bytes())
    blob = tmp_path / "layout" / "blobs" / "sha256" / manifest["layers"][0]["digest"][7:]
    data = bytearray(blob.read_bytes())
    data[-20] ^= 0xFF
    blob.write_bytes(bytes(data))
    store = S.Store(str(tmp_path / "store"))
    with pytest.raises(S.StoreError) as err:
        add(store, "localhost/x:latest", tmp_path / "layout")
    assert "does not match its digest" in err.value.msg
    assert store.refs() == {}
    assert os.listdir(store.path + "/layers") == []


def test_gc_keeps_what_images_and_bundles_use(tmp_path):
    make_layout(tmp_path / "one", [BASE])
    make_layout(tmp_path / "two", [BASE, TOP])
    store = S.Store(str(tmp_path / "store"))
    one, _u = add(store, "localhost/one:latest", tmp_path / "one")
    two, _u = add(store, "localhost/two:latest", tmp_path / "two")
    alive = {"yes"}
    store.add_user("/srv/b1", two)

    def is_alive(_record):
        return "yes" in alive
    with store.lock():
        store.remove("localhost/two:latest")
        assert store.gc(is_alive) == {"layers": [], "blobs": [two.digest, two.manifest["config"]["digest"]]
                                      if two.digest < two.manifest["config"]["digest"]
                                      else [two.manifest["config"]["digest"], two.digest]}
    assert os.path.isdir(store.layer_dir(two.chain_ids[1]))  # the bundle keeps its layers
    alive.clear()  # the bundle went away
    with store.lock():
        removed = store.gc(is_alive)
    assert removed["layers"] == [two.chain_ids[1]] and removed["blobs"] == []
    assert os.path.isdir(store.layer_dir(one.chain_ids[0]))  # shared with a remaining image
    assert os.listdir(store.path + "/users") == []
    with store.lock():
        store.remove("localhost/one:latest")
        store.gc(is_alive)
    assert os.listdir(store.path + "/layers") == [] and os.listdir(store.path + "/blobs/sha256") == []


def test_gc_removes_leftovers_but_not_a_pull_in_progress(tmp_path):
    store = S.Store(str(tmp_path / "store"))
    store.create()
    os.mkdir(store.path + "/layers/.new-abc")
    os.mkdir(store.path + "/tmp/stale")
    with store.pull_dir() as busy:
        with store.lock():
            store.gc()
        assert os.path.isdir(busy)
    assert os.listdir(store.path + "/layers") == [] and os.listdir(store.path + "/tmp") == []


def test_damaged_store_files(tmp_path):
    make_layout(tmp_path / "layout", [BASE])
    store = S.Store(str(tmp_path / "store"))
    image, _u = add(store, "localhost/x:latest", tmp_path / "layout")
    with open(store.blob_path(image.digest), "ab") as handle:
        handle.write(b" ")
    with pytest.raises(S.StoreError) as err:
        store.lookup("localhost/x:latest")
    assert "damaged" in err.value.msg
    (tmp_path / "store" / "refs.json").write_text("{")
    with pytest.raises(S.StoreError):
        store.refs()


def test_store_path_checked():
    with pytest.raises(S.StoreError):
        S.Store("relative/store")
    with pytest.raises(S.StoreError):
        S.Store("/")
    assert S.Store(None).path == S.DEFAULT_STORE


def test_config_without_diff_ids_refused(tmp_path):
    with pytest.raises(S.StoreError) as err:
        S.check_config({"os": "linux", "rootfs": {}}, [{}], "config of x")
    assert "diff_ids" in err.value.msg
    with pytest.raises(S.StoreError):
        S.check_config({"os": "windows"}, [], "config of x")


def test_read_merged_hides_below_opaque(tmp_path):
    top, bottom = tmp_path / "top", tmp_path / "bottom"
    (bottom / "d").mkdir(parents=True)
    (bottom / "d" / "f").write_bytes(b"old")
    (bottom / "g").write_bytes(b"g")
    (top / "d").mkdir(parents=True)
    os.setxattr(str(top / "d"), LY.OPAQUE_XATTR, b"y")
    assert LY.read_merged([str(top), str(bottom)], "d/f") is None
    assert LY.read_merged([str(top), str(bottom)], "g") == b"g"
