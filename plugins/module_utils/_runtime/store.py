# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The image store: images by name, their manifests and configs by digest, every layer unpacked once.

::

    <store>/                              0700, default /var/lib/oci-runtime/images
      store.lock                          flock: every change of the store holds it
      refs.json                           {"schemaVersion", "images": {name: record}} (temp + rename)
      blobs/sha256/<hex>                  manifests and image configs, verified, by digest
      layers/<chain id hex>/diff/         one layer unpacked in overlayfs's format (layer.py)
      layers/<chain id hex>/layer.json    its digest, diff id, sizes
      layers/.new-*                       a layer being unpacked (renamed into place when complete)
      users/<sha256(bundle)[:32]>.json    a bundle whose root filesystem is an overlay of an image
      tmp/<random>/                       a pull in progress (flocked by its pull)

A record in ``refs.json`` is ``{digest, remoteDigest, config, layers: [chain ids], source, added}``.
It is written last, so an image is either complete in the store or absent from it. Layers are keyed
by their chain id (the digest of the diff ids below and including them), as containerd keys its
snapshots: the same layer on the same parents is unpacked once, whatever image brings it.

Compressed layer blobs are not kept once unpacked: the store holds each image once, unpacked (a
pull downloads into ``tmp/`` and imports from there).

Concurrency: a pull downloads outside the lock, then takes it to import; a layer already present is
not unpacked again, so two runs pulling the same image never unpack twice. Garbage collection (after
an image is removed) runs under the lock and keeps every layer named by an image or by a bundle
still using it.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import stat
import tempfile
import time
from typing import TYPE_CHECKING, Any

from . import layout as L
from .archive import ArchiveError, file_digest
from .errors import StateError
from .image import (
    CONFIG_TYPES,
    INDEX_TYPES,
    LAYER_TYPES,
    MANIFEST_TYPES,
    MAX_JSON_BLOB,
    ImageError,
    ImageLayout,
    host_platform,
)
from .layer import read_merged, unpack_layer

if TYPE_CHECKING:
    from collections.abc import Callable

DEFAULT_STORE = "/var/lib/oci-runtime/images"
SCHEMA_VERSION = 1
LOCK_TIMEOUT = 3600.0
_HEX = set("0123456789abcdef")


class StoreError(ImageError):
    """The image store is unusable, or an image is missing from it."""


def chain_ids(diff_ids: list[str]) -> list[str]:
    """The chain id of every layer: the first layer's diff id, then
    ``sha256(<chain id below> + " " + <diff id>)``."""
    chains: list[str] = []
    for diff_id in diff_ids:
        if not chains:
            chains.append(diff_id)
        else:
            chains.append("sha256:" + hashlib.sha256(
                ("%s %s" % (chains[-1], diff_id)).encode("ascii")).hexdigest())
    return chains


def _hex(digest: object) -> str:
    algorithm, _sep, encoded = str(digest).partition(":")
    if algorithm != "sha256" or len(encoded) != 64 or not set(encoded) <= _HEX:
        raise StoreError("%r is not a sha256 digest" % (digest,))
    return encoded


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _read_limited(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_JSON_BLOB + 1)
    except (IOError, OSError) as exc:
        raise StoreError("cannot read %s: %s" % (what, exc.strerror), path=path)
    if len(data) > MAX_JSON_BLOB:
        raise StoreError("%s is larger than %d bytes" % (what, MAX_JSON_BLOB), path=path)
    return data


def _json(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise StoreError("%s is not valid JSON: %s" % (what, exc))
    if not isinstance(value, dict):
        raise StoreError("%s is not a JSON object" % what)
    return value


def check_manifest(manifest: dict[str, Any], what: str) -> None:
    """Refuse what is not a single-platform image manifest with file system layers."""
    media_type = manifest.get("mediaType") or (INDEX_TYPES[0] if "manifests" in manifest
                                               else MANIFEST_TYPES[0])
    if media_type in INDEX_TYPES:
        raise StoreError("%s is an image index, not a manifest" % what)
    if media_type not in MANIFEST_TYPES or manifest.get("schemaVersion") != 2:
        raise StoreError("%s has media type %r, schemaVersion %r: not an image manifest this "
                         "store reads" % (what, media_type, manifest.get("schemaVersion")))
    config, layers = manifest.get("config"), manifest.get("layers")
    if not isinstance(config, dict) or not isinstance(layers, list):
        raise StoreError("%s has no config or no layers list" % what)
    if config.get("mediaType") not in CONFIG_TYPES:
        raise StoreError("%s: the config has media type %r: not a container image"
                         % (what, config.get("mediaType")))
    for index, layer in enumerate(layers):
        if not isinstance(layer, dict) or layer.get("mediaType") not in LAYER_TYPES:
            raise StoreError("%s: layer %d is not a file system layer" % (what, index + 1))
        _hex(layer.get("digest"))
        if not isinstance(layer.get("size"), int) or layer["size"] < 0:
            raise StoreError("%s: layer %d has no size" % (what, index + 1))


def check_config(config: dict[str, Any], layers: list[Any], what: str) -> list[str]:
    if config.get("os") and config["os"] != "linux":
        raise StoreError("%s is for %s, not linux" % (what, config["os"]))
    diff_ids = (config.get("rootfs") or {}).get("diff_ids")
    if not isinstance(diff_ids, list) or len(diff_ids) != len(layers):
        raise StoreError("%s has %s rootfs.diff_ids for %d layers: the store needs one per layer"
                         % (what, len(diff_ids) if isinstance(diff_ids, list) else "no",
                            len(layers)))
    for diff_id in diff_ids:
        _hex(diff_id)
    return diff_ids


# --- what an import reads from ------------------------------------------------------------------

class Fetched(object):
    """An image ready to import: manifest and config bytes (verified) and its layer blobs."""

    def __init__(self, manifest_bytes: bytes, config_bytes: bytes,
                 layer_path: Callable[[dict[str, Any]], str], what: str) -> None:
        self.what = what
        self.manifest_bytes = manifest_bytes
        self.manifest_digest = _sha256(manifest_bytes)
        self.manifest = _json(manifest_bytes, "manifest of %s" % what)
        check_manifest(self.manifest, "manifest of %s" % what)
        descriptor = self.manifest["config"]
        if _sha256(config_bytes) != descriptor.get("digest") or \
                len(config_bytes) != descriptor.get("size"):
            raise StoreError("the config of %s does not match its descriptor: the source is "
                             "corrupt" % what)
        self.config_bytes = config_bytes
        self.config_digest = descriptor["digest"]
        self.config = _json(config_bytes, "config of %s" % what)
        self.layers = self.manifest["layers"]
        self.diff_ids = check_config(self.config, self.layers, "config of %s" % what)
        self._layer_path = layer_path

    def layer_path(self, index: int) -> str:
        layer = self.layers[index]
        path = self._layer_path(layer)
        try:
            st = os.stat(path)
        except OSError:
            raise StoreError("layer %d (%s) of %s is missing" % (index + 1, layer["digest"], self.what),
                             path=path)
        if not stat.S_ISREG(st.st_mode) or st.st_size != layer["size"]:
            raise StoreError("layer %d (%s) of %s is not the size its descriptor says: the source "
                             "is corrupt" % (index + 1, layer["digest"], self.what), path=path)
        return path


def fetched_from_dir(path: str, what: str) -> Fetched:
    """What ``skopeo copy ... dir:PATH`` wrote: ``manifest.json`` and blobs named by their hex."""
    manifest_bytes = _read_limited(os.path.join(path, "manifest.json"), "manifest of %s" % what)
    manifest = _json(manifest_bytes, "manifest of %s" % what)
    check_manifest(manifest, "manifest of %s" % what)
    config_path = os.path.join(path, _hex(manifest["config"].get("digest")))
    config_bytes = _read_limited(config_path, "config of %s" % what)
    return Fetched(manifest_bytes, config_bytes,
                   lambda layer: os.path.join(path, _hex(layer["digest"])), what)


def fetched_from_store(store: Store, digest: str, what: str) -> Fetched | None:
    """The image whose manifest the store already has, when all its layers are unpacked there too
    (the same image under another name, or pulled again by digest): nothing to download. None
    otherwise."""
    try:
        manifest_bytes = _read_limited(store.blob_path(digest), "manifest %s" % digest)
        if _sha256(manifest_bytes) != digest:
            return None
        manifest = _json(manifest_bytes, "manifest %s" % digest)
        check_manifest(manifest, "manifest %s" % digest)
        config_bytes = _read_limited(store.blob_path(manifest["config"]["digest"]),
                                     "config of %s" % digest)
    except StoreError:
        return None

    def no_blob(layer: dict[str, Any]) -> str:
        raise StoreError("layer %s of %s is not in the store" % (layer["digest"], what))
    fetched = Fetched(manifest_bytes, config_bytes, no_blob, what)
    if all(os.path.isfile(os.path.join(store.layer_root(c), "layer.json"))
           for c in chain_ids(fetched.diff_ids)):
        return fetched
    return None


def fetched_from_layout(path: str, ref: str | None = None) -> Fetched:
    """The image ``ref`` names in the OCI image layout ``path`` (narrowed to this platform)."""
    layout = ImageLayout(path)
    image = layout.resolve(ref, host_platform())

    def blob(digest: str) -> str:
        return os.path.join(layout.path, "blobs", "sha256", _hex(digest))
    what = "image layout %s%s" % (layout.path, " (%s)" % ref if ref else "")
    manifest_bytes = _read_limited(blob(image.manifest_digest), "manifest of %s" % what)
    if _sha256(manifest_bytes) != image.manifest_digest:
        raise StoreError("the manifest of %s changed while it was read" % what)
    config_bytes = _read_limited(blob(image.config_digest), "config of %s" % what)
    return Fetched(manifest_bytes, config_bytes, lambda layer: blob(layer["digest"]), what)


# --- the store ----------------------------------------------------------------------------------

class StoredImage(object):
    """An image of the store: its record, manifest and config."""

    def __init__(self, store: Store, name: str, record: dict[str, Any], manifest: dict[str, Any],
                 config: dict[str, Any]) -> None:
        self.store = store
        self.name = name
        self.record = record
        self.digest = record["digest"]
        self.manifest = manifest
        self.config = config
        self.chain_ids = list(record["layers"])

    def layer_dirs(self) -> list[str]:
        """The unpacked layers, top first (overlayfs's lowerdir order)."""
        return [self.store.layer_dir(c) for c in reversed(self.chain_ids)]

    def read_files(self, names: list[str]) -> dict[str, bytes | None]:
        dirs = self.layer_dirs()
        return {name: read_merged(dirs, name) for name in names}

    def describe(self) -> dict[str, Any]:
        """The module's ``image`` return value."""
        layers = self.manifest["layers"]
        return {
            "name": self.name,
            "digest": self.digest,
            "remote_digest": self.record.get("remoteDigest"),
            "id": self.manifest["config"]["digest"],
            "size": sum(layer["size"] for layer in layers) + self.manifest["config"]["size"],
            "layers": [layer["digest"] for layer in layers],
            "created": self.config.get("created"),
            "architecture": self.config.get("architecture"),
            "os": self.config.get("os"),
            "config": self.config.get("config") or {},
            "source": self.record.get("source"),
        }


class StoreLock(object):
    """The store's exclusive flock (``store.lock``)."""

    def __init__(self, store: Store, timeout: float = LOCK_TIMEOUT) -> None:
        self.store = store
        self.timeout = timeout
        self._fd: int | None = None

    def __enter__(self) -> StoreLock:
        path = os.path.join(self.store.path, "store.lock")
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise StoreError("cannot open %s: %s" % (path, exc.strerror), path=path)
        L.flock_within(fd, path, self.timeout, StoreError,
                       "image store %s is busy (locked for more than %ss)"
                       % (self.store.path, self.timeout), max_delay=0.2)
        self._fd = fd
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class PullDir(object):
    """A private directory under ``tmp/`` for one pull, flocked while it is used, removed after."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.path: str | None = None
        self._fd: int | None = None

    def __enter__(self) -> str:
        self.store.create()
        try:
            path = self.path = tempfile.mkdtemp(dir=os.path.join(self.store.path, "tmp"))
            fd = self._fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            raise StoreError("cannot make a temporary directory in %s: %s"
                             % (self.store.path, exc.strerror))
        return path

    def __exit__(self, *exc_info: object) -> None:
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)
        if self._fd is not None:
            os.close(self._fd)


class Store(object):
    """One image store directory. Creates nothing until asked."""

    def __init__(self, path: str | None = None) -> None:
        path = path or DEFAULT_STORE
        if not isinstance(path, str) or not os.path.isabs(path):
            raise StoreError("image_store must be an absolute path, got %r" % (path,),
                             field="image_store")
        self.path = os.path.normpath(path)
        if self.path == "/":
            raise StoreError("image_store must not be /", field="image_store")
        self.refs_file = os.path.join(self.path, "refs.json")

    # --- paths --------------------------------------------------------------------------------

    def blob_path(self, digest: object) -> str:
        return os.path.join(self.path, "blobs", "sha256", _hex(digest))

    def layer_root(self, chain_id: str) -> str:
        return os.path.join(self.path, "layers", _hex(chain_id))

    def layer_dir(self, chain_id: str) -> str:
        return os.path.join(self.layer_root(chain_id), "diff")

    def user_file(self, bundle: str) -> str:
        name = hashlib.sha256(os.path.normpath(bundle).encode("utf-8", "surrogateescape"))
        return os.path.join(self.path, "users", name.hexdigest()[:32] + ".json")

    def exists(self) -> bool:
        return os.path.isfile(self.refs_file)

    def create(self) -> None:
        for sub in ("", "blobs/sha256", "layers", "users", "tmp"):
            L.make_private_dir(os.path.join(self.path, sub) if sub else self.path)
        if not os.path.exists(self.refs_file):
            with self.lock():
                if not os.path.exists(self.refs_file):
                    self._write_refs({})

    def lock(self) -> StoreLock:
        return StoreLock(self)

    def pull_dir(self) -> PullDir:
        return PullDir(self)

    # --- names --------------------------------------------------------------------------------

    def refs(self) -> dict[str, Any]:
        """{name: record} of the store (empty when there is no store)."""
        try:
            data = L.read_json(self.refs_file)
        except StateError as exc:
            raise StoreError("the image store's %s is damaged: %s" % (self.refs_file, exc.msg),
                             path=self.refs_file)
        if data is None:
            return {}
        images = data.get("images") if isinstance(data, dict) else None
        if not isinstance(images, dict):
            raise StoreError("the image store's %s has no images map" % self.refs_file,
                             path=self.refs_file)
        return images

    def _write_refs(self, images: dict[str, Any]) -> None:
        L.atomic_write_json(self.refs_file, {"schemaVersion": SCHEMA_VERSION, "images": images})

    def lookup(self, name: object) -> StoredImage | None:
        """The StoredImage named ``name``, None when the store does not have it."""
        record = self.refs().get(str(name))
        return None if record is None else self.load(str(name), record)

    def load(self, name: str, record: dict[str, Any]) -> StoredImage:
        manifest = self._read_blob(record.get("digest"), "manifest of image %s" % name)
        config = self._read_blob(manifest.get("config", {}).get("digest"),
                                 "config of image %s" % name)
        return StoredImage(self, name, record, manifest, config)

    def _read_blob(self, digest: object, what: str) -> dict[str, Any]:
        path = self.blob_path(digest)
        data = _read_limited(path, "%s in the image store" % what)
        if _sha256(data) != digest:
            raise StoreError("%s in the image store (%s) is damaged: remove the image and pull it "
                             "again" % (what, path), path=path)
        return _json(data, what)

    def images(self) -> list[StoredImage]:
        return [self.load(name, record) for name, record in sorted(self.refs().items())]

    # --- import -------------------------------------------------------------------------------

    def add(self, name: object, fetched: Fetched, source: str,
            remote_digest: str | None = None) -> tuple[StoredImage, int]:
        """Import ``fetched`` under ``name`` (replacing what the name had); the caller holds the
        lock. Layers already in the store are not unpacked again. Returns (StoredImage, number of
        layers unpacked)."""
        name = str(name)
        self._write_blob(fetched.manifest_digest, fetched.manifest_bytes)
        self._write_blob(fetched.config_digest, fetched.config_bytes)
        chains = chain_ids(fetched.diff_ids)
        unpacked = 0
        for index, chain in enumerate(chains):
            if os.path.isfile(os.path.join(self.layer_root(chain), "layer.json")):
                continue
            self._unpack(fetched, index, chain)
            unpacked += 1
        record = {"digest": fetched.manifest_digest, "remoteDigest": remote_digest,
                  "config": fetched.config_digest, "layers": chains, "source": source,
                  "added": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        images = self.refs()
        old = images.get(name)
        if old is not None and old.get("digest") == record["digest"]:
            record["added"] = old.get("added", record["added"])
        images[name] = record
        self._write_refs(images)
        return self.load(name, record), unpacked

    def _write_blob(self, digest: str, data: bytes) -> None:
        path = self.blob_path(digest)
        if not os.path.isfile(path):
            L.atomic_write(path, data, mode=0o600)

    def _unpack(self, fetched: Fetched, index: int, chain: str) -> None:
        layer = fetched.layers[index]
        what = "layer %d of %d (%s) of %s" % (index + 1, len(fetched.layers),
                                              layer["digest"][:19] + "...", fetched.what)
        blob = fetched.layer_path(index)
        root = self.layer_root(chain)
        if os.path.lexists(root):  # no layer.json: an unpack that did not finish
            shutil.rmtree(root, ignore_errors=True)
        try:
            new = tempfile.mkdtemp(prefix=".new-", dir=os.path.join(self.path, "layers"))
        except OSError as exc:
            raise StoreError("cannot unpack %s: %s" % (what, exc.strerror))
        try:
            diff = os.path.join(new, "diff")
            os.mkdir(diff, 0o700)
            try:
                size = unpack_layer(blob, layer, fetched.diff_ids[index], diff, what)
            except ArchiveError:
                if file_digest(blob) != layer["digest"]:
                    raise StoreError("%s does not match its digest: the download or the source is "
                                     "corrupt" % what, path=blob)
                raise
            L.atomic_write_json(os.path.join(new, "layer.json"), {
                "chainId": chain, "diffId": fetched.diff_ids[index], "digest": layer["digest"],
                "mediaType": layer.get("mediaType"), "size": layer["size"],
                "unpackedSize": size})
            os.rename(new, root)
        except BaseException:
            shutil.rmtree(new, ignore_errors=True)
            raise

    # --- removal ------------------------------------------------------------------------------

    def remove(self, name: object) -> dict[str, Any] | None:
        """Drop ``name`` from the store's names (the caller holds the lock, then runs gc())."""
        images = self.refs()
        record = images.pop(str(name), None)
        if record is not None:
            self._write_refs(images)
        return record

    # --- bundles using images -----------------------------------------------------------------

    def add_user(self, bundle: str, image: StoredImage) -> None:
        L.atomic_write_json(self.user_file(bundle), {
            "bundle": os.path.normpath(bundle), "image": image.name, "digest": image.digest,
            "layers": image.chain_ids})

    def remove_user(self, bundle: str) -> None:
        try:
            os.unlink(self.user_file(bundle))
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise StoreError("cannot remove %s: %s" % (self.user_file(bundle), exc.strerror))

    def users(self, is_alive: Callable[[dict[str, Any]], bool] | None = None,
              prune: bool = True) -> list[dict[str, Any]]:
        """Records of the bundles using images of this store. ``is_alive(record)`` says whether the
        bundle still uses it; records it rejects are left out, and removed when ``prune`` (the
        caller then holds the lock)."""
        directory = os.path.join(self.path, "users")
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            return []
        found = []
        for name in names:
            path = os.path.join(directory, name)
            try:
                record = L.read_json(path)
            except StateError:
                record = None
            if not isinstance(record, dict) or (is_alive is not None and not is_alive(record)):
                if not prune:
                    continue
                try:
                    os.unlink(path)
                except OSError:
                    pass
                continue
            found.append(record)
        return found

    # --- garbage collection -------------------------------------------------------------------

    def gc(self, is_alive: Callable[[dict[str, Any]], bool] | None = None,
           dry_run: bool = False) -> dict[str, list[str]]:
        """Remove the layers and blobs that no image and no live bundle uses, and what interrupted
        runs left (``layers/.new-*``, unlocked ``tmp/*``). The caller holds the lock. Returns
        {"layers": [chain ids], "blobs": [digests]} removed (or that would be)."""
        images = self.refs()
        keep_layers: set[str] = set()
        keep_blobs: set[str] = set()
        for record in images.values():
            keep_layers.update(record.get("layers") or [])
            keep_blobs.update([record.get("digest"), record.get("config")])
        for user in self.users(is_alive):
            keep_layers.update(user.get("layers") or [])
        removed: dict[str, list[str]] = {"layers": [], "blobs": []}
        layers_dir = os.path.join(self.path, "layers")
        for name in list_dir(layers_dir):
            path = os.path.join(layers_dir, name)
            if name.startswith(".new-"):
                if not dry_run:
                    shutil.rmtree(path, ignore_errors=True)
                continue
            if "sha256:" + name not in keep_layers:
                removed["layers"].append("sha256:" + name)
                if not dry_run:
                    shutil.rmtree(path)
        blobs_dir = os.path.join(self.path, "blobs", "sha256")
        for name in list_dir(blobs_dir):
            if "sha256:" + name not in keep_blobs:
                removed["blobs"].append("sha256:" + name)
                if not dry_run:
                    os.unlink(os.path.join(blobs_dir, name))
        if not dry_run:
            self._clean_tmp()
        return removed

    def _clean_tmp(self) -> None:
        directory = os.path.join(self.path, "tmp")
        for name in list_dir(directory):
            path = os.path.join(directory, name)
            try:
                fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue  # a pull in progress
            shutil.rmtree(path, ignore_errors=True)
            os.close(fd)

    def layer_info(self, chain_id: str) -> dict[str, Any]:
        try:
            return L.read_json(os.path.join(self.layer_root(chain_id), "layer.json")) or {}
        except StateError:
            return {}


def list_dir(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []
