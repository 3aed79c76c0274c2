# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""image.py: OCI image layouts built in tmp_path: resolving tags (nested indexes, platforms),
verifying every blob, applying layers with whiteouts, diff_ids, compression."""

from __future__ import annotations

import gzip
import hashlib
import json
import os

import pytest

from ansible_collections.oci.runtime.plugins.module_utils._runtime import archive as A
from ansible_collections.oci.runtime.plugins.module_utils._runtime import image as I
from ansible_collections.oci.runtime.tests.unit.plugins.module_utils._runtime.layer_tars import tar_of

HOST = ("linux", "amd64", None)


class Layout(object):
    """Writes an OCI image layout: blobs, manifests, configs, indexes."""

    def __init__(self, path):
        self.path = path
        os.makedirs(os.path.join(path, "blobs", "sha256"))
        with open(os.path.join(path, "oci-layout"), "w") as handle:
            json.dump({"imageLayoutVersion": "1.0.0"}, handle)
        self.index = {"schemaVersion": 2, "manifests": []}
        self.save()

    def blob(self, data, media_type):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        with open(self.blob_path(digest), "wb") as handle:
            handle.write(data)
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    def blob_path(self, digest):
        return os.path.join(self.path, "blobs", "sha256", digest.split(":", 1)[1])

    def json_blob(self, document, media_type):
        return self.blob(json.dumps(document).encode(), media_type)

    def image(self, layers, config=None, compress=True, arch="amd64", diff_ids=True):
        """A manifest descriptor for ``layers`` (each a tar's bytes)."""
        descriptors, ids = [], []
        for data in layers:
            ids.append("sha256:" + hashlib.sha256(data).hexdigest())
            if compress:
                descriptors.append(self.blob(gzip.compress(data), "application/vnd.oci.image.layer.v1.tar+gzip"))
            else:
                descriptors.append(self.blob(data, "application/vnd.oci.image.layer.v1.tar"))
        image_config = {"architecture": arch, "os": "linux", "config": config or {},
                        "rootfs": {"type": "layers", "diff_ids": ids if diff_ids else []}}
        config_descriptor = self.json_blob(image_config, I.OCI_CONFIG)
        manifest = {"schemaVersion": 2, "mediaType": I.OCI_MANIFEST, "config": config_descriptor,
                    "layers": descriptors}
        return self.json_blob(manifest, I.OCI_MANIFEST)

    def tag(self, descriptor, ref=None, platform=None):
        entry = dict(descriptor)
        if ref is not None:
            entry["annotations"] = {I.REF_ANNOTATION: ref}
        if platform is not None:
            entry["platform"] = platform
        return entry

    def index_blob(self, entries):
        return self.json_blob({"schemaVersion": 2, "mediaType": I.OCI_INDEX, "manifests": entries}, I.OCI_INDEX)

    def add(self, entry):
        self.index["manifests"].append(entry)
        self.save()

    def save(self):
        with open(os.path.join(self.path, "index.json"), "w") as handle:
            json.dump(self.index, handle)

    def document(self, descriptor):
        with open(self.blob_path(descriptor["digest"]), "rb") as handle:
            return json.loads(handle.read())


LAYER1 = tar_of({"etc/": None, "etc/passwd": b"root:x:0:0::/:/bin/sh\napp:x:7:8::/:/bin/sh\n",
                 "etc/gone": b"bye", "data/": None, "data/old": b"old", "bin/": None, "bin/sh": b"sh",
                 "bin/ash": ("sym", "sh")})
LAYER2 = tar_of({"etc/.wh.gone": b"", "data/": None, "data/.wh..wh..opq": b"", "data/new": b"new",
                 "etc/motd": b"hello"})


@pytest.fixture
def layout(tmp_path):
    return Layout(str(tmp_path / "image"))


def apply(image, tmp_path):
    root = tmp_path / "rootfs"
    root.mkdir()
    writer = A.RootfsWriter(str(root))
    image.apply(writer)
    writer.finish()
    found = []
    for directory, dirs, names in os.walk(root):
        found.extend(os.path.relpath(os.path.join(directory, n), root) for n in dirs + names)
    return root, sorted(found)


# --- resolving ------------------------------------------------------------------------------------

def test_single_manifest_is_the_default(layout, tmp_path):
    manifest = layout.image([LAYER1, LAYER2], config={"Cmd": ["sh"], "WorkingDir": "/data"})
    layout.add(layout.tag(manifest, "1.0"))
    image = I.ImageLayout(layout.path).resolve(host=HOST)
    assert image.ref == "1.0"
    assert image.digest == image.manifest_digest == manifest["digest"]
    assert image.config["config"]["WorkingDir"] == "/data"
    assert len(image.layers) == 2
    root, files = apply(image, tmp_path)
    assert files == ["bin", "bin/ash", "bin/sh", "data", "data/new", "etc", "etc/motd", "etc/passwd"]
    assert (root / "data" / "new").read_bytes() == b"new"


def test_tags_and_latest(layout):
    first = layout.image([tar_of({"one": b"1"})])
    second = layout.image([tar_of({"two": b"2"})])
    layout.add(layout.tag(first, "1"))
    layout.add(layout.tag(second, "latest"))
    parsed = I.ImageLayout(layout.path)
    assert parsed.refs() == ["1", "latest"]
    assert parsed.resolve(host=HOST).manifest_digest == second["digest"]
    assert parsed.resolve("1", host=HOST).manifest_digest == first["digest"]
    with pytest.raises(I.ImageError) as err:
        parsed.resolve("2", host=HOST)
    assert "no tag '2'" in err.value.msg and "1, latest" in err.value.msg
    assert err.value.details["field"] == "image_ref"


def test_several_images_without_latest_need_a_ref(layout):
    layout.add(layout.tag(layout.image([tar_of({"a": b"1"})]), "a"))
    layout.add(layout.tag(layout.image([tar_of({"b": b"2"})]), "b"))
    with pytest.raises(I.ImageError) as err:
        I.ImageLayout(layout.path).resolve(host=HOST)
    assert "none is tagged 'latest'" in err.value.msg and "set image_ref" in err.value.msg


def test_nested_index_and_platforms(layout, tmp_path):
    amd = layout.image([tar_of({"arch": b"amd64"})])
    arm = layout.image([tar_of({"arch": b"arm64"})], arch="arm64")
    index = layout.index_blob([
        layout.tag(arm, platform={"os": "linux", "architecture": "arm64", "variant": "v8"}),
        layout.tag(amd, platform={"os": "linux", "architecture": "amd64"}),
        dict(layout.json_blob({"schemaVersion": 2}, I.OCI_MANIFEST),
             platform={"os": "unknown", "architecture": "unknown"},
             annotations={"vnd.docker.reference.type": "attestation-manifest"}),
    ])
    layout.add(layout.tag(index, "multi"))
    parsed = I.ImageLayout(layout.path)
    image = parsed.resolve("multi", host=HOST)
    assert image.digest == index["digest"]
    assert image.manifest_digest == amd["digest"]
    assert apply(image, tmp_path)[0].joinpath("arch").read_bytes() == b"amd64"
    assert parsed.resolve("multi", host=("linux", "arm64", "v8")).manifest_digest == arm["digest"]
    with pytest.raises(I.ImageError) as err:
        parsed.resolve("multi", host=("linux", "s390x", None))
    assert "no image for linux/s390x" in err.value.msg
    assert "linux/arm64/v8" in err.value.msg and "linux/amd64" in err.value.msg


def test_ref_annotation_inside_a_nested_index(layout):
    inner = layout.image([tar_of({"x": b"1"})])
    other = layout.image([tar_of({"y": b"1"})])
    nested = layout.index_blob([layout.tag(inner, "deep"), layout.tag(other, "other")])
    layout.add(layout.tag(nested))
    layout.add(layout.tag(layout.image([tar_of({"z": b"1"})]), "top"))
    parsed = I.ImageLayout(layout.path)
    assert parsed.resolve("deep", host=HOST).manifest_digest == inner["digest"]
    assert parsed.resolve("other", host=HOST).manifest_digest == other["digest"]


def test_docker_media_types_and_missing_media_type(layout):
    data = tar_of({"f": b"1"})
    layer = layout.blob(gzip.compress(data), "application/vnd.docker.image.rootfs.diff.tar.gzip")
    config = layout.json_blob({"os": "linux", "architecture": "amd64", "config": {},
                               "rootfs": {"diff_ids": ["sha256:" + hashlib.sha256(data).hexdigest()]}},
                              I.DOCKER_CONFIG)
    manifest = layout.json_blob({"schemaVersion": 2, "mediaType": I.DOCKER_MANIFEST, "config": config,
                                 "layers": [layer]}, I.DOCKER_MANIFEST)
    entry = dict(manifest)
    del entry["mediaType"]
    layout.add(entry)
    image = I.ImageLayout(layout.path).resolve(host=HOST)
    assert image.manifest_digest == manifest["digest"] and image.ref is None


# --- refusing broken layouts ----------------------------------------------------------------------

def test_not_a_layout(tmp_path):
    with pytest.raises(I.ImageError) as err:
        I.ImageLayout(str(tmp_path / "nothing"))
    assert "does not exist" in err.value.msg
    (tmp_path / "empty").mkdir()
    with pytest.raises(I.ImageError) as err:
        I.ImageLayout(str(tmp_path / "empty"))
    assert "not an OCI image layout" in err.value.msg and "oci-layout" in err.value.msg
    with pytest.raises(I.ImageError):
        I.ImageLayout("relative/path")


def test_bad_layout_version_and_index(layout):
    with open(os.path.join(layout.path, "index.json"), "w") as handle:
        handle.write("{not json")
    with pytest.raises(I.ImageError) as err:
        I.ImageLayout(layout.path)
    assert "index.json is not valid JSON" in err.value.msg
    with open(os.path.join(layout.path, "oci-layout"), "w") as handle:
        json.dump({"imageLayoutVersion": "2.0.0"}, handle)
    with pytest.raises(I.ImageError) as err:
        I.ImageLayout(layout.path)
    assert "version 2.0.0" in err.value.msg


def test_empty_index(layout):
    with pytest.raises(I.ImageError) as err:
        I.ImageLayout(layout.path).resolve(host=HOST)
    assert "lists no images" in err.value.msg


def tamper(layout, digest, data=None):
    path = layout.blob_path(digest)
    with open(path, "rb") as handle:
        original = handle.read()
    with open(path, "wb") as handle:
        handle.write(data if data is not None else original[:-1] + bytes([original[-1] ^ 1]))


def test_manifest_digest_mismatch(layout):
    manifest = layout.image([LAYER1])
    layout.add(layout.tag(manifest, "t"))
    tamper(layout, manifest["digest"], json.dumps(dict(layout.document(manifest), extra=1))[:manifest["size"]].encode()
           .ljust(manifest["size"], b" "))
    with pytest.raises(I.ImageError) as err:
        I.ImageLayout(layout.path).resolve(host=HOST)
    assert manifest["digest"] in err.value.msg and "corrupt or was tampered with" in err.value.msg


def test_config_digest_mismatch(layout):
    manifest = layout.image([LAYER1])
    layout.add(layout.tag(manifest, "t"))
    config = layout.document(manifest)["config"]
    tamper(layout, config["digest"])
    with pytest.raises(I.ImageError) as err:
        I.ImageLayout(layout.path).resolve(host=HOST)
    assert "config of image" in err.value.msg and config["digest"] in err.value.msg


def test_layer_digest_mismatch_is_found_before_anything_is_written(layout, tmp_path):
    manifest = layout.image([LAYER1, LAYER2])
    layout.add(layout.tag(manifest, "t"))
    second = layout.document(manifest)["layers"][1]
    tamper(layout, second["digest"])
    image = I.ImageLayout(layout.path).resolve(host=HOST)  # manifest and config are fine
    root = tmp_path / "rootfs"
    root.mkdir()
    with pytest.raises(I.ImageError) as err:
        image.apply(A.RootfsWriter(str(root)))
    assert "layer 2 of 2" in err.value.msg and "tampered" in err.value.msg
    assert os.listdir(root) == []  # layer 1 was not applied either


def test_size_mismatch_and_missing_blob(layout):
    manifest = layout.image([LAYER1])
    layout.add(layout.tag(manifest, "t"))
    layer = layout.document(manifest)["layers"][0]
    with open(layout.blob_path(layer["digest"]), "ab") as handle:
        handle.write(b"more")
    image = I.ImageLayout(layout.path).resolve(host=HOST)
    with pytest.raises(I.ImageError) as err:
        image.verify_layers()
    assert "bytes, but its descriptor says %d" % layer["size"] in err.value.msg
    os.unlink(layout.blob_path(layer["digest"]))
    with pytest.raises(I.ImageError) as err:
        image.verify_layers()
    assert "is missing" in err.value.msg


def test_bad_digest_form(layout):
    layout.add({"mediaType": I.OCI_MANIFEST, "digest": "md5:abc", "size": 3})
    with pytest.raises(I.ImageError) as err:
        I.ImageLayout(layout.path).resolve(host=HOST)
    assert "'md5:abc' is not a digest" in err.value.msg


def test_diff_id_mismatch(layout, tmp_path):
    manifest = layout.image([LAYER1])
    document = layout.document(manifest)
    config = layout.document(document["config"])
    config["rootfs"]["diff_ids"] = ["sha256:" + "0" * 64]
    document["config"] = layout.json_blob(config, I.OCI_CONFIG)
    layout.add(layout.tag(layout.json_blob(document, I.OCI_MANIFEST), "t"))
    image = I.ImageLayout(layout.path).resolve(host=HOST)
    with pytest.raises(I.ImageError) as err:
        apply(image, tmp_path)
    assert "rootfs.diff_ids" in err.value.msg


def test_uncompressed_layers_and_no_diff_ids(layout, tmp_path):
    layout.add(layout.tag(layout.image([LAYER1, LAYER2], compress=False, diff_ids=False), "t"))
    image = I.ImageLayout(layout.path).resolve(host=HOST)
    assert image.diff_ids is None
    assert "data/new" in apply(image, tmp_path)[1]


def test_zstd_layer(layout, tmp_path):
    layer = layout.blob(b"\x28\xb5\x2f\xfd" + b"\x00" * 20, "application/vnd.oci.image.layer.v1.tar+zstd")
    config = layout.json_blob({"os": "linux", "architecture": "amd64", "rootfs": {}}, I.OCI_CONFIG)
    layout.add(layout.tag(layout.json_blob({"schemaVersion": 2, "mediaType": I.OCI_MANIFEST,
                                            "config": config, "layers": [layer]}, I.OCI_MANIFEST), "z"))
    image = I.ImageLayout(layout.path).resolve(host=HOST)
    try:
        from compression import zstd  # noqa: F401 pylint: disable=unused-import
    except ImportError:
        with pytest.raises(A.ArchiveError) as err:
            apply(image, tmp_path)
        assert "zstd-compressed" in err.value.msg and "layer 1 of 1" in err.value.msg


@pytest.mark.parametrize("change, words", [
    (lambda m, c: c.update(os="windows"), "is for windows"),
    (lambda m, c: m["config"].update(mediaType="application/vnd.cncf.helm.config.v1+json"), "not a container image"),
    (lambda m, c: m["layers"][0].update(mediaType="application/x-foo"), "not a file system layer"),
    (lambda m, c: m.update(schemaVersion=1), "schemaVersion 1"),
])
def test_not_a_linux_container_image(layout, change, words):
    manifest = layout.document(layout.image([LAYER1]))
    config = layout.document(manifest["config"])
    change(manifest, config)
    media_type = manifest["config"]["mediaType"]
    manifest["config"] = dict(layout.json_blob(config, media_type))
    layout.add(layout.tag(layout.json_blob(manifest, I.OCI_MANIFEST), "t"))
    with pytest.raises(I.ImageError) as err:
        I.ImageLayout(layout.path).resolve(host=HOST)
    assert words in err.value.msg


def test_other_architecture_warns(layout):
    layout.add(layout.tag(layout.image([LAYER1], arch="arm64"), "t"))
    image = I.ImageLayout(layout.path).resolve(host=HOST)
    assert image.warnings and "built for arm64" in image.warnings[0]


def test_read_files_through_layers(layout):
    replaced = tar_of({"etc/passwd": b"second"})
    layout.add(layout.tag(layout.image([LAYER1, LAYER2, replaced]), "t"))
    image = I.ImageLayout(layout.path).resolve(host=HOST)
    assert image.read_files(["etc/passwd", "etc/gone", "etc/group"]) == {
        "etc/passwd": b"second", "etc/gone": None, "etc/group": None}


def test_host_platform():
    host_os, arch, dummy = I.host_platform()
    assert host_os == "linux" and arch
