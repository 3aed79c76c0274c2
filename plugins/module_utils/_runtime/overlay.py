# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A bundle whose root filesystem is an overlay of an image of the store.

::

    <bundle>/rootfs/                          the overlay mount point
    <bundle>/.oci-runtime-overlay.json        what to mount: {schemaVersion, store, image, digest,
                                              layers (chain ids, bottom first)}
    <bundle>/.oci-runtime-overlay/upper/      the bundle's own writable layer
    <bundle>/.oci-runtime-overlay/work/       overlayfs's work directory

The image's layers (``<store>/layers/<chain id>/diff``) are the read-only ``lowerdir`` shared by
every bundle of the image; a container's writes land in its bundle's ``upper/``. The record is what
makes the mount survive a reboot: ``ensure_mounted`` (called before every runtime ``create`` and
``restore``) mounts it again when it is missing. The bundle is registered with the store as a user
of the image, so the store keeps those layers while the bundle exists.
"""

from __future__ import annotations

import errno
import os
import shutil
from typing import TYPE_CHECKING, Any

from . import layout as L
from .errors import BundleError, StateError
from .mounts import MNT_DETACH, _unescape

if TYPE_CHECKING:
    from .store import Store, StoredImage

RECORD_FILE = ".oci-runtime-overlay.json"
OVERLAY_DIR = ".oci-runtime-overlay"
ROOTFS_DIR = "rootfs"
SCHEMA_VERSION = 1
MAX_MOUNT_DATA = 4000


def record_path(bundle: str) -> str:
    return os.path.join(bundle, RECORD_FILE)


def read_record(bundle: str) -> dict[str, Any] | None:
    """The bundle's overlay record, None when its root filesystem is not an overlay."""
    try:
        record = L.read_json(record_path(bundle))
    except StateError as exc:
        raise BundleError("the overlay record of bundle %s is damaged: %s" % (bundle, exc.msg),
                          path=record_path(bundle))
    return record if isinstance(record, dict) else None


def make_record(store: Store, image: StoredImage) -> dict[str, Any]:
    return {"schemaVersion": SCHEMA_VERSION, "store": store.path, "image": image.name,
            "digest": image.digest, "layers": list(image.chain_ids)}


def mount_type(target: str, mountinfo: str = "/proc/self/mountinfo") -> str | None:
    """The file system type mounted at ``target`` (the last mount there), None when none is."""
    found = None
    try:
        with open(mountinfo) as handle:
            for line in handle:
                fields = line.split()
                if len(fields) < 5 or _unescape(fields[4]) != target:
                    continue
                try:
                    found = fields[fields.index("-") + 1]
                except (ValueError, IndexError):
                    found = "?"
    except (IOError, OSError):
        return None
    return found


def is_mounted(bundle: str) -> bool:
    return mount_type(os.path.join(os.path.realpath(bundle), ROOTFS_DIR)) == "overlay"


def _libc() -> tuple[Any, Any]:
    import ctypes  # pylint: disable=import-outside-toplevel
    libc = ctypes.CDLL(None, use_errno=True)
    return ctypes, libc


def lower_dirs(bundle: str, record: dict[str, Any]) -> list[str]:
    """The record's layer directories, top first (overlayfs's lowerdir order); BundleError when the
    record is malformed or a layer is missing from the store."""
    store = record.get("store")
    layers = record.get("layers")
    if not isinstance(store, str) or not isinstance(layers, list) or not layers:
        raise BundleError("the overlay record of bundle %s names no store or no layers" % bundle,
                          path=record_path(bundle))
    lower = []
    for chain in reversed(layers):
        directory = os.path.join(store, "layers", str(chain).split(":", 1)[-1], "diff")
        if not os.path.isdir(directory):
            raise BundleError(
                "bundle %s: layer %s of image %s is missing from the image store %s (was the image "
                "removed and collected?); build the bundle again"
                % (bundle, chain, record.get("image"), store), path=directory)
        lower.append(directory)
    return lower


def mount(bundle: str, record: dict[str, Any]) -> None:
    """Mount the overlay the record names on ``<bundle>/rootfs``."""
    bundle = os.path.realpath(bundle)
    lower = lower_dirs(bundle, record)
    upper = os.path.join(bundle, OVERLAY_DIR, "upper")
    work = os.path.join(bundle, OVERLAY_DIR, "work")
    target = os.path.join(bundle, ROOTFS_DIR)
    for directory in (upper, work, target):
        if not os.path.isdir(directory) or os.path.islink(directory):
            raise BundleError("bundle %s: %s is missing; build the bundle again"
                              % (bundle, directory), path=directory)
    if any("," in p or ":" in p for p in lower + [upper, work]):
        raise BundleError("bundle %s: overlayfs cannot take paths holding ',' or ':'" % bundle)
    data = "lowerdir=%s,upperdir=%s,workdir=%s" % (":".join(lower), upper, work)
    if len(data) > MAX_MOUNT_DATA:
        raise BundleError("bundle %s: the overlay options of %d layers are %d bytes, more than the "
                          "kernel takes (4096): use a shorter image_store path or an image with "
                          "fewer layers" % (bundle, len(lower), len(data)))
    ctypes, libc = _libc()
    libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
    if libc.mount(b"overlay", os.fsencode(target), b"overlay", 0, os.fsencode(data)) != 0:
        err = ctypes.get_errno()
        raise BundleError("cannot mount the overlay root filesystem of bundle %s: %s"
                          % (bundle, os.strerror(err)), path=target)


def ensure_mounted(bundle: str | None) -> bool:
    """Mount the bundle's overlay if it has one and it is not mounted; True when it mounted."""
    if not bundle:
        return False
    record = read_record(bundle)
    if record is None or is_mounted(bundle):
        return False
    mount(bundle, record)
    return True


def unmount(bundle: str) -> None:
    """Unmount ``<bundle>/rootfs`` (everything stacked there); lazily when it is busy."""
    target = os.path.join(os.path.realpath(bundle), ROOTFS_DIR)
    ctypes, libc = _libc()
    for _attempt in range(64):
        if mount_type(target) is None:
            return
        if libc.umount2(os.fsencode(target), 0) != 0:
            err = ctypes.get_errno()
            if err == errno.EBUSY:
                if libc.umount2(os.fsencode(target), MNT_DETACH) == 0:
                    continue
                err = ctypes.get_errno()
            if err not in (errno.EINVAL, errno.ENOENT):
                raise BundleError("cannot unmount %s: %s" % (target, os.strerror(err)), path=target)
            return
    raise BundleError("cannot unmount %s: still mounted" % target, path=target)


def prepare(bundle: str) -> None:
    """A fresh, empty upper and work directory and an empty ``rootfs/`` mount point (anything
    there before, mounted or not, is removed)."""
    unmount(bundle)
    for path in (os.path.join(bundle, OVERLAY_DIR), os.path.join(bundle, ROOTFS_DIR)):
        if os.path.lexists(path):
            try:
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                else:
                    os.unlink(path)
            except OSError as exc:
                raise BundleError("cannot remove %s: %s" % (path, exc.strerror), path=path)
    for path in (os.path.join(bundle, OVERLAY_DIR), os.path.join(bundle, OVERLAY_DIR, "upper"),
                 os.path.join(bundle, OVERLAY_DIR, "work"), os.path.join(bundle, ROOTFS_DIR)):
        try:
            os.mkdir(path, 0o700)
        except OSError as exc:
            raise BundleError("cannot create %s: %s" % (path, exc.strerror), path=path)
    os.chmod(os.path.join(bundle, OVERLAY_DIR, "upper"), 0o755)
    os.chmod(os.path.join(bundle, ROOTFS_DIR), 0o755)


def write_record(bundle: str, record: dict[str, Any]) -> None:
    L.atomic_write_json(record_path(bundle), record)


def teardown(bundle: str) -> None:
    """Unmount and forget the overlay (the upper layer goes with it); leaves an empty bundle dir
    entry ``rootfs/`` alone only when it is not the mount point any more."""
    unmount(bundle)
    for path in (record_path(bundle), os.path.join(bundle, OVERLAY_DIR)):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.unlink(path)


def is_user_alive(record: dict[str, Any]) -> bool:
    """Whether the bundle a store user record names still uses that image (for Store.gc)."""
    try:
        mine = read_record(record.get("bundle") or "")
    except BundleError:
        return True  # damaged: keep its layers rather than pull them from under it
    return mine is not None and mine.get("digest") == record.get("digest")
