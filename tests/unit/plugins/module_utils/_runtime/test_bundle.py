# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""bundle.py: load_bundle's checks and the config digest."""

from __future__ import annotations

import hashlib
import json

import pytest

from ansible_collections.oci.runtime.plugins.module_utils._runtime.bundle import config_digest, load_bundle
from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import BundleError


def _config(**overrides):
    config = {
        "ociVersion": "1.0.2-dev",
        "process": {"terminal": False, "args": ["sh"], "cwd": "/"},
        "root": {"path": "rootfs", "readonly": True},
        "linux": {"namespaces": [{"type": "pid"}]},
    }
    config.update(overrides)
    return config


def _bundle(tmp_path, config=None, raw=None, rootfs=True):
    bundle = tmp_path / "bundle"
    bundle.mkdir(exist_ok=True)
    if rootfs:
        (bundle / "rootfs").mkdir(exist_ok=True)
    if raw is not None:
        (bundle / "config.json").write_bytes(raw)
    elif config is not False:
        (bundle / "config.json").write_text(json.dumps(config if config is not None else _config()))
    return bundle


def test_load_bundle_ok(tmp_path):
    bundle = _bundle(tmp_path)
    loaded = load_bundle(str(bundle) + "/./")
    assert loaded.bundle == str(bundle)
    assert loaded.process["args"] == ["sh"]
    data = (bundle / "config.json").read_bytes()
    assert loaded.digest == "sha256:" + hashlib.sha256(data).hexdigest()
    assert loaded.root_ids() == (0, 0)


def test_digest_stable_and_sensitive(tmp_path):
    bundle = _bundle(tmp_path)
    first = load_bundle(str(bundle)).digest
    assert load_bundle(str(bundle)).digest == first
    (bundle / "rootfs" / "newfile").write_text("x")  # only config.json counts
    assert load_bundle(str(bundle)).digest == first
    config = _config()
    config["process"]["args"] = ["sh", "-c", "true"]
    (bundle / "config.json").write_text(json.dumps(config))
    assert load_bundle(str(bundle)).digest != first
    assert config_digest(b"") == "sha256:" + hashlib.sha256(b"").hexdigest()


def test_digest_is_of_bytes_not_of_meaning(tmp_path):
    bundle = _bundle(tmp_path)
    first = load_bundle(str(bundle)).digest
    (bundle / "config.json").write_text(json.dumps(_config(), indent=4))
    assert load_bundle(str(bundle)).digest != first


@pytest.mark.parametrize("value", ["", None, "relative/bundle"])
def test_bundle_must_be_absolute(value):
    with pytest.raises(BundleError):
        load_bundle(value)


def test_missing_bundle_dir(tmp_path):
    with pytest.raises(BundleError) as info:
        load_bundle(str(tmp_path / "nope"))
    assert str(tmp_path / "nope") in str(info.value)
    assert "does not exist" in str(info.value)


def test_bundle_is_a_file(tmp_path):
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(BundleError):
        load_bundle(str(path))


def test_missing_config(tmp_path):
    bundle = _bundle(tmp_path, config=False)
    with pytest.raises(BundleError) as info:
        load_bundle(str(bundle))
    assert str(bundle / "config.json") in str(info.value)


def test_malformed_json_names_config(tmp_path):
    bundle = _bundle(tmp_path, raw=b'{"process": ')
    with pytest.raises(BundleError) as info:
        load_bundle(str(bundle))
    assert str(bundle / "config.json") in str(info.value)
    assert "not valid JSON" in str(info.value)


def test_not_utf8(tmp_path):
    bundle = _bundle(tmp_path, raw=b'{"a": "\xff"}')
    with pytest.raises(BundleError) as info:
        load_bundle(str(bundle))
    assert "config.json" in str(info.value) and "UTF-8" in str(info.value)


def test_not_an_object(tmp_path):
    bundle = _bundle(tmp_path, raw=b"[1, 2]")
    with pytest.raises(BundleError) as info:
        load_bundle(str(bundle))
    assert "config.json" in str(info.value) and "list" in str(info.value)


def test_terminal_true(tmp_path):
    config = _config()
    config["process"]["terminal"] = True
    with pytest.raises(BundleError) as info:
        load_bundle(str(_bundle(tmp_path, config)))
    assert "terminal" in str(info.value) and "config.json" in str(info.value)


@pytest.mark.parametrize("process", [None, {}, {"args": []}, {"terminal": False}, "sh"])
def test_no_process_args(tmp_path, process):
    config = _config()
    if process is None:
        del config["process"]
    else:
        config["process"] = process
    with pytest.raises(BundleError) as info:
        load_bundle(str(_bundle(tmp_path, config)))
    assert "process.args" in str(info.value) and "config.json" in str(info.value)


def test_no_root_path(tmp_path):
    config = _config()
    del config["root"]
    with pytest.raises(BundleError) as info:
        load_bundle(str(_bundle(tmp_path, config)))
    assert "root.path" in str(info.value)


def test_missing_rootfs(tmp_path):
    bundle = _bundle(tmp_path, rootfs=False)
    with pytest.raises(BundleError) as info:
        load_bundle(str(bundle))
    assert str(bundle / "rootfs") in str(info.value)
    assert "root.path" in str(info.value)


def test_absolute_rootfs(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    bundle = _bundle(tmp_path, _config(root={"path": str(elsewhere)}), rootfs=False)
    assert load_bundle(str(bundle)).config["root"]["path"] == str(elsewhere)
    elsewhere.rmdir()
    with pytest.raises(BundleError):
        load_bundle(str(bundle))


def test_root_ids_from_user_namespace_mappings(tmp_path):
    config = _config(linux={
        "uidMappings": [{"containerID": 1, "hostID": 5000, "size": 10},
                        {"containerID": 0, "hostID": 100000, "size": 1}],
        "gidMappings": [{"containerID": 0, "hostID": 200000, "size": 65536}],
    })
    assert load_bundle(str(_bundle(tmp_path, config))).root_ids() == (100000, 200000)
