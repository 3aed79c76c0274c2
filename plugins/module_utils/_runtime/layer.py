# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unpacking one image layer into a directory of its own, in overlayfs's format.

The store keeps every layer unpacked once (``layers/<chain id>/diff``) and a bundle's root filesystem
is an overlay mount of them. Each layer goes through ``archive.RootfsWriter`` (the same refusals of
absolute names, ``..``, escaping links, device nodes, writes through symlinks) with the OCI
whiteouts translated instead of applied:

- ``.wh.<name>`` becomes a character device 0:0 named ``<name>`` (overlayfs hides ``<name>`` of the
  lower layers);
- ``.wh..wh..opq`` sets ``trusted.overlay.opaque=y`` on its directory (the lower layers' entries of
  that directory are hidden, this layer's own stay);
- a whiteout never hides an entry of its own layer;
- extended attributes ``trusted.overlay.*`` from the archive are dropped, so a layer cannot redirect
  overlayfs lookups.

A parent directory that is a symbolic link in a *lower* layer is not followed: the entry is written
under a real directory of that name in this layer (as containerd's overlay applier does). A hard
link must point to a file of its own layer.
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile
from typing import Any

from .archive import (
    ArchiveError,
    HashingReader,
    RootfsWriter,
    decompressed,
    extract_layer,
    sniff_compression,
)

OPAQUE_XATTR = "trusted.overlay.opaque"
OVERLAY_XATTR_PREFIX = "trusted.overlay."


def is_whiteout(st: os.stat_result) -> bool:
    """Whether an lstat result is overlayfs's whiteout (a character device 0:0)."""
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


class OverlayLayerWriter(RootfsWriter):
    """A RootfsWriter for one layer in a directory of its own (overlayfs whiteouts)."""

    def _opaque_whiteout(self, member: tarfile.TarInfo, parent: list[str]) -> None:
        try:
            os.setxattr(self._path(parent), OPAQUE_XATTR, b"y")
        except OSError as exc:
            self._oserror(member, "mark opaque the directory of", exc)

    def _whiteout_directory(self, member: tarfile.TarInfo, parts: list[str]) -> list[str] | None:
        return self._create_parents(member, parts)

    def _hide(self, member: tarfile.TarInfo, rel: list[str]) -> None:
        path = self._path(rel)
        self._clear(member, path, keep_dir=False)
        try:
            os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(0, 0))
        except OSError as exc:
            self._oserror(member, "write the whiteout for", exc)

    def _xattrs(self, target: str | int, member: tarfile.TarInfo) -> None:
        headers = member.pax_headers or {}
        if any(k.startswith("SCHILY.xattr." + OVERLAY_XATTR_PREFIX) for k in headers):
            member.pax_headers = {k: v for k, v in headers.items()
                                  if not k.startswith("SCHILY.xattr." + OVERLAY_XATTR_PREFIX)}
        RootfsWriter._xattrs(self, target, member)


def unpack_layer(blob_path: str, descriptor: dict[str, Any], diff_id: str, target: str,
                 what: str) -> int:
    """Unpack the layer blob at ``blob_path`` into the existing empty directory ``target``,
    checking the blob against ``descriptor`` (size, digest) and its uncompressed bytes against
    ``diff_id`` while it is written. Returns the size of the uncompressed layer."""
    try:
        raw = open(blob_path, "rb")
    except (IOError, OSError) as exc:
        raise ArchiveError("cannot read %s: %s" % (what, exc.strerror), path=blob_path)
    with raw:
        compression = sniff_compression(raw.read(6))
        raw.seek(0)
        hashed = HashingReader(raw, descriptor["digest"].split(":", 1)[0])
        writer = OverlayLayerWriter(target)
        uncompressed = extract_layer(hashed, decompressed(hashed, compression, what), writer, what,
                                     diff_id)
        writer.finish()
    if hashed.size != descriptor["size"] or hashed.digest != descriptor["digest"]:
        raise ArchiveError("%s does not match its descriptor (%d bytes, %s): refusing it"
                           % (what, hashed.size, hashed.digest))
    if uncompressed.digest != diff_id:
        raise ArchiveError("%s uncompresses to %s, but the image config's rootfs.diff_ids says %s: "
                           "the image is corrupt" % (what, uncompressed.digest, diff_id))
    return uncompressed.size


def read_merged(layer_dirs: list[str], relpath: str, limit: int = 4 << 20) -> bytes | None:
    """Bytes of the regular file ``relpath`` as the overlay of ``layer_dirs`` (top first) shows it,
    None when it is missing, hidden or not a regular file. Symbolic links are not followed."""
    parts = [p for p in relpath.split("/") if p]
    for top in layer_dirs:
        hidden = False
        for depth in range(1, len(parts)):
            directory = os.path.join(top, *parts[:depth])
            try:
                st = os.lstat(directory)
            except OSError:
                break
            if is_whiteout(st) or not stat.S_ISDIR(st.st_mode):
                return None
            try:
                if os.getxattr(directory, OPAQUE_XATTR, follow_symlinks=False) == b"y":
                    hidden = True
            except OSError as exc:
                if exc.errno not in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP):
                    raise
        path = os.path.join(top, *parts)
        try:
            st = os.lstat(path)
        except OSError:
            if hidden:
                return None
            continue
        if is_whiteout(st) or not stat.S_ISREG(st.st_mode) or st.st_size > limit:
            return None
        with open(path, "rb") as handle:
            return handle.read(limit)
    return None
