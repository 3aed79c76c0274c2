# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Writing a root filesystem safely: tar archives, OCI image layers (with whiteouts), directory copies.

Nothing here uses ``tarfile.extractall``. Every entry goes through ``RootfsWriter``, which:

- refuses names that are absolute or hold a ``..`` component, hard links whose target is outside
  the root or missing, symbolic links whose target climbs above the root when resolved inside it
  (absolute targets are resolved inside the root, so ``/bin/busybox`` is fine), and device nodes
  unless they are allowed; every refusal names the entry;
- never follows a symbolic link while writing: each parent directory is checked with ``lstat``; a
  parent that is a symbolic link *inside the root* is resolved inside the root, component by
  component (as a chroot would), never by the kernel on the host; the entry itself is created
  with ``O_EXCL | O_NOFOLLOW`` after whatever was at its place has been removed;
- sets modes, ownership (when running as root; numeric ids from the archive), mtimes and extended
  attributes (``SCHILY.xattr.*``, best effort); directory modes and mtimes are applied at the end,
  deepest first, so that writing into a directory does not undo them;
- applies OCI whiteouts when asked (image layers): ``.wh.<name>`` deletes ``<name>`` of the lower
  layers, ``.wh..wh..opq`` empties its directory of what the lower layers put there; entries of the
  layer being applied are never removed by its own whiteouts.

The writer works in a directory that only root can enter (a fresh ``rootfs.new-*`` made by
``tempfile.mkdtemp``, mode 0700 until ``finish()``), so nobody can swap a path under it while it
works.
"""

from __future__ import annotations

import bz2
import errno
import functools
import gzip
import hashlib
import lzma
import os
import shutil
import stat
import tarfile
import zlib
from typing import TYPE_CHECKING, cast, overload

from .errors import BundleError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from typing import IO, Literal, NoReturn, Protocol

    class Stream(Protocol):
        """What the readers here read from: a file, a decompressor, a HashingReader."""

        def read(self, size: int = -1) -> bytes:
            ...

    # Opens the data of a regular file entry (None: it has none).
    DataOpener = Callable[[], "IO[bytes] | None"]

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
WHITEOUT_OPAQUE = ".wh..wh..opq"
MAX_SYMLINK_HOPS = 40
_COPY_CHUNK = 1 << 20


class ArchiveError(BundleError):
    """An archive or layer that is unreadable, or holds an entry that is refused."""


def show(name: str) -> str:
    """A member name as it can be shown in a message (undecodable bytes escaped)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


# --- compression ----------------------------------------------------------------------------------

def sniff_compression(head: bytes) -> str | None:
    """'gzip', 'xz', 'bzip2', 'zstd' or None (plain tar) from the first bytes of a file."""
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if head[:3] == b"BZh":
        return "bzip2"
    if head[:4] == b"\x28\xb5\x2f\xfd":
        return "zstd"
    return None


def sniff_file(path: str) -> str | None:
    try:
        with open(path, "rb") as handle:
            return sniff_compression(handle.read(6))
    except (IOError, OSError) as exc:
        raise ArchiveError("cannot read %s: %s" % (path, exc.strerror), path=path)


def decompressed(raw: Stream, compression: str | None, what: str) -> Stream:
    """A file object that reads ``raw`` decompressed."""
    if compression is None:
        return raw
    # The decompressors only read from it (and a stream's readers never seek).
    fileobj = cast("IO[bytes]", raw)
    if compression == "gzip":
        return gzip.GzipFile(fileobj=fileobj, mode="rb")
    if compression == "xz":
        return lzma.LZMAFile(fileobj, mode="rb")
    if compression == "bzip2":
        return bz2.BZ2File(fileobj, mode="rb")
    if compression == "zstd":
        try:
            # Python 3.14+, so not there for mypy, which checks the code as Python 3.8.
            from compression import zstd  # type: ignore[import-not-found]  # pylint: disable=import-outside-toplevel
        except ImportError:
            raise ArchiveError(
                "%s is zstd-compressed, which this Python (standard library only, before 3.14) "
                "cannot read; recompress it with gzip (for an image: skopeo copy "
                "--dest-compress-format gzip, or umoci/skopeo with gzip layers)" % what)
        return zstd.ZstdFile(fileobj, mode="rb")
    raise ArchiveError("%s: unknown compression %r" % (what, compression))


class HashingReader(object):
    """Reads through to ``raw`` and hashes (and counts) every byte read."""

    def __init__(self, raw: Stream, algorithm: str = "sha256") -> None:
        self.raw = raw
        self.algorithm = algorithm
        self.hash = hashlib.new(algorithm)
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.hash.update(data)
        self.size += len(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True

    def drain(self) -> None:
        while self.read(_COPY_CHUNK):
            pass

    @property
    def digest(self) -> str:
        return "%s:%s" % (self.algorithm, self.hash.hexdigest())


def file_digest(path: str, algorithm: str = "sha256") -> str:
    """``<algorithm>:<hex>`` of a file's bytes."""
    digest = hashlib.new(algorithm)
    try:
        with open(path, "rb") as handle:
            while True:
                chunk = handle.read(_COPY_CHUNK)
                if not chunk:
                    break
                digest.update(chunk)
    except (IOError, OSError) as exc:
        raise ArchiveError("cannot read %s: %s" % (path, exc.strerror), path=path)
    return "%s:%s" % (algorithm, digest.hexdigest())


# --- names ----------------------------------------------------------------------------------------

def member_parts(name: str, what: str) -> list[str]:
    """The components of an archive member's name; refuses absolute names and ``..``."""
    if name.startswith("/"):
        raise ArchiveError("%s: member %r has an absolute path; refusing to write outside the root "
                           "filesystem" % (what, show(name)), member=show(name))
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ArchiveError("%s: member %r has a '..' component; refusing to write outside the "
                           "root filesystem" % (what, show(name)), member=show(name))
    return parts


def symlink_escapes(parts: Sequence[str], target: str) -> bool:
    """Whether a symlink at ``parts`` pointing to ``target`` climbs above the root when resolved
    inside it (lexically; absolute targets start at the root and cannot)."""
    if target.startswith("/"):
        return False
    depth = len(parts) - 1
    for component in target.split("/"):
        if component in ("", "."):
            continue
        if component == "..":
            depth -= 1
            if depth < 0:
                return True
        else:
            depth += 1
    return False


@overload
def resolve_in_root(root: str, parts: Sequence[str], create: Literal[True], what: str = "",
                    member: str = "") -> tuple[list[str], list[tuple[str, ...]]]:
    ...


@overload
def resolve_in_root(root: str, parts: Sequence[str], create: Literal[False] = False, what: str = "",
                    member: str = "") -> list[str] | None:
    ...


def resolve_in_root(root: str, parts: Sequence[str], create: bool = False, what: str = "",
                    member: str = "") -> tuple[list[str], list[tuple[str, ...]]] | list[str] | None:
    """The symlink-free components of directory ``parts`` inside ``root``.

    Symbolic links met on the way are resolved inside the root (absolute targets from the root,
    ``..`` never above it), checked with lstat at each step. Missing directories are created
    (0755) when ``create``; otherwise None is returned. A component that is neither a directory nor
    a symlink raises ArchiveError."""
    resolved: list[str] = []
    pending = list(parts)
    hops = 0
    created: list[tuple[str, ...]] = []
    while pending:
        name = pending.pop(0)
        if name in ("", "."):
            continue
        if name == "..":
            if resolved:
                resolved.pop()
            continue
        path = os.path.join(root, *(resolved + [name]))
        try:
            st = os.lstat(path)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
                raise ArchiveError("%s: cannot inspect %s for member %r: %s"
                                   % (what, path, show(member), exc.strerror), member=show(member))
            if not create:
                return None
            try:
                os.mkdir(path, 0o700)
                os.chmod(path, 0o755)
            except OSError as exc2:
                raise ArchiveError("%s: cannot create directory %s for member %r: %s"
                                   % (what, path, show(member), exc2.strerror), member=show(member))
            resolved.append(name)
            created.append(tuple(resolved))
            continue
        if stat.S_ISDIR(st.st_mode):
            resolved.append(name)
        elif stat.S_ISLNK(st.st_mode):
            hops += 1
            if hops > MAX_SYMLINK_HOPS:
                raise ArchiveError("%s: member %r: too many levels of symbolic links under %s"
                                   % (what, show(member), "/".join(resolved + [name])),
                                   member=show(member))
            target = os.readlink(path)
            if target.startswith("/"):
                resolved = []
            pending = target.split("/") + pending
        else:
            raise ArchiveError("%s: member %r: %s is not a directory"
                               % (what, show(member), "/" + "/".join(resolved + [name])),
                               member=show(member))
    if create:
        return resolved, created
    return resolved


def read_in_root(root: str, relpath: str, limit: int = 4 << 20) -> str | None:
    """Text of the regular file ``relpath`` of the tree ``root``, resolved inside it; None when it
    does not exist or is not a regular file."""
    parts = [p for p in relpath.split("/") if p]
    for _hop in range(MAX_SYMLINK_HOPS):
        try:
            parent = resolve_in_root(root, parts[:-1], what=root, member=relpath)
        except ArchiveError:
            return None
        if parent is None:
            return None
        path = os.path.join(root, *(parent + parts[-1:]))
        try:
            st = os.lstat(path)
        except OSError:
            return None
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink(path)
            parts = [p for p in target.split("/") if p] if target.startswith("/") \
                else parent + [p for p in target.split("/") if p]
            continue
        if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
            return None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as handle:
            return handle.read(limit).decode("utf-8", "replace")
    return None


# --- the writer -----------------------------------------------------------------------------------

class RootfsWriter(object):
    """Writes entries (``tarfile.TarInfo``) into the root filesystem directory ``root``."""

    def __init__(self, root: str, allow_devices: bool = False) -> None:
        self.root = root
        self.allow_devices = allow_devices
        self.as_root = os.geteuid() == 0
        # resolved components -> (mode, mtime) applied by finish()
        self._dirs: dict[tuple[str, ...], tuple[int, float]] = {}
        self._root_meta: tarfile.TarInfo | None = None
        # resolved components touched by the layer being applied
        self._layer: set[tuple[str, ...]] | None = None
        self.what = root

    # layers: which paths the current layer wrote (its own whiteouts never remove them)
    def begin_layer(self, what: str) -> None:
        self._layer = set()
        self.what = what

    def end_layer(self) -> None:
        self._layer = None

    def _touch(self, parts: Sequence[str]) -> None:
        if self._layer is not None:
            for end in range(1, len(parts) + 1):
                self._layer.add(tuple(parts[:end]))

    def _path(self, parts: Iterable[str]) -> str:
        return os.path.join(self.root, *parts)

    def _refuse(self, member: tarfile.TarInfo, why: str) -> NoReturn:
        raise ArchiveError("%s: member %r %s" % (self.what, show(member.name), why),
                           member=show(member.name))

    def _oserror(self, member: tarfile.TarInfo, action: str, exc: OSError) -> NoReturn:
        raise ArchiveError("%s: cannot %s member %r: %s"
                           % (self.what, action, show(member.name), exc.strerror or exc),
                           member=show(member.name))

    # --- one entry ----------------------------------------------------------------------------

    def add(self, member: tarfile.TarInfo, open_data: DataOpener | None,
            whiteouts: bool = False) -> None:
        """Write one entry; ``open_data()`` returns the file object of a regular file's data."""
        parts = member_parts(member.name, self.what)
        if whiteouts and parts and parts[-1].startswith(WHITEOUT_PREFIX):
            self._whiteout(member, parts)
            return
        if not parts:
            if not member.isdir():
                self._refuse(member, "names the root of the file system but is not a directory")
            self._root_meta = member
            return
        if (member.ischr() or member.isblk()) and not self.allow_devices:
            self._refuse(member, "is a device node (%s %d:%d); set allow_devices to write it"
                         % ("character" if member.ischr() else "block", member.devmajor,
                            member.devminor))
        link_source = None
        if member.islnk():
            link_source = self._hardlink_source(member)
        parent, created = resolve_in_root(self.root, parts[:-1], create=True, what=self.what,
                                          member=member.name)
        for made in created:
            self._touch(list(made))
        rel = parent + parts[-1:]
        if member.issym() and symlink_escapes(rel, member.linkname):
            self._refuse(member, "is a symbolic link to %r, which points outside the root "
                         "filesystem" % show(member.linkname))
        path = self._path(rel)
        if link_source is not None and link_source == path:
            return  # a hard link to itself: nothing to do
        self._touch(rel)
        existing = self._clear(member, path, keep_dir=member.isdir())
        try:
            if member.isdir():
                if not existing:
                    os.mkdir(path, 0o700)
                self._owner(path, member)
                os.chmod(path, 0o700 | stat.S_IMODE(member.mode))  # final mode in finish()
                self._xattrs(path, member)
                self._dirs[tuple(rel)] = (stat.S_IMODE(member.mode), member.mtime)
            elif member.isreg():
                self._write_file(path, member, open_data)
            elif member.issym():
                os.symlink(member.linkname, path)
                self._owner(path, member)
                self._times(path, member)
            elif member.islnk() and link_source is not None:
                os.link(link_source, path, follow_symlinks=False)
            elif member.ischr() or member.isblk() or member.isfifo():
                kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK if member.isblk() \
                    else stat.S_IFIFO
                device = os.makedev(member.devmajor, member.devminor) if kind != stat.S_IFIFO else 0
                os.mknod(path, 0o600 | kind, device)
                self._owner(path, member)
                os.chmod(path, stat.S_IMODE(member.mode))
                self._times(path, member)
            else:
                self._refuse(member, "has a type this module cannot write (tar type %r)"
                             % member.type)
        except OSError as exc:
            self._oserror(member, "write", exc)

    def _hardlink_source(self, member: tarfile.TarInfo) -> str:
        target = member.linkname
        if target.startswith("/"):
            self._refuse(member, "is a hard link to the absolute path %r, outside the root "
                         "filesystem" % show(target))
        parts = [p for p in target.split("/") if p not in ("", ".")]
        if ".." in parts or not parts:
            self._refuse(member, "is a hard link to %r, which points outside the root filesystem"
                         % show(target))
        parent = resolve_in_root(self.root, parts[:-1], what=self.what, member=member.name)
        source = self._path(parent + parts[-1:]) if parent is not None else None
        try:
            st = os.lstat(source) if source else None
        except OSError:
            st = None
        if st is None or source is None:
            self._refuse(member, "is a hard link to %r, which does not exist in the root "
                         "filesystem before it" % show(target))
        if stat.S_ISDIR(st.st_mode):
            self._refuse(member, "is a hard link to the directory %r" % show(target))
        return source

    def _clear(self, member: tarfile.TarInfo, path: str, keep_dir: bool) -> bool:
        """Remove what is at ``path`` (never following it); True when a directory was kept."""
        try:
            st = os.lstat(path)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return False
            self._oserror(member, "replace", exc)
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return True
            try:
                shutil.rmtree(path)
            except OSError as exc:
                self._oserror(member, "replace the directory at", exc)
            return False
        try:
            os.unlink(path)
        except OSError as exc:
            self._oserror(member, "replace", exc)
        return False

    def _write_file(self, path: str, member: tarfile.TarInfo, open_data: DataOpener | None) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600)
        source = None
        try:
            source = open_data() if open_data is not None else None
            if source is None:
                raise ArchiveError("%s: member %r has no data" % (self.what, show(member.name)),
                                   member=show(member.name))
            remaining = member.size
            while remaining > 0:
                chunk = source.read(min(_COPY_CHUNK, remaining))
                if not chunk:
                    raise ArchiveError("%s: member %r is truncated" % (self.what, show(member.name)),
                                       member=show(member.name))
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
                remaining -= len(chunk)
            if self.as_root:
                os.fchown(fd, member.uid, member.gid)
            os.fchmod(fd, stat.S_IMODE(member.mode))
            self._xattrs(fd, member)
            os.utime(fd, (member.mtime, member.mtime))
        finally:
            os.close(fd)
            if source is not None:
                source.close()

    def _owner(self, path: str, member: tarfile.TarInfo) -> None:
        if self.as_root:
            os.lchown(path, member.uid, member.gid)

    @staticmethod
    def _times(path: str, member: tarfile.TarInfo) -> None:
        os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)

    def _xattrs(self, target: str | int, member: tarfile.TarInfo) -> None:
        for key, value in (member.pax_headers or {}).items():
            if not key.startswith("SCHILY.xattr."):
                continue
            data = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
            try:
                os.setxattr(target, key[len("SCHILY.xattr."):], data)
            except OSError as exc:
                if exc.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
                    self._oserror(member, "set extended attribute %s of" % key[13:], exc)

    # --- whiteouts ----------------------------------------------------------------------------

    # The steps that differ between applying whiteouts (here) and keeping them for overlayfs
    # (layer.OverlayLayerWriter) are the hooks _opaque_whiteout, _whiteout_directory and _hide.
    def _whiteout(self, member: tarfile.TarInfo, parts: list[str]) -> None:
        name = parts[-1]
        if name == WHITEOUT_OPAQUE:
            parent = self._create_parents(member, parts[:-1])
            self._touch(parent)
            self._opaque_whiteout(member, parent)
            return
        if name.startswith(WHITEOUT_META_PREFIX):
            return  # aufs bookkeeping (.wh..wh.plnk, ...): not part of the file system
        victim = name[len(WHITEOUT_PREFIX):]
        if victim in ("", ".", ".."):
            self._refuse(member, "is a whiteout of %r, which is not a name" % victim)
        directory = self._whiteout_directory(member, parts[:-1])
        if directory is None:
            return
        rel = tuple(directory + [victim])
        if self._layer is not None and rel in self._layer:
            return  # a whiteout only hides what the lower layers have
        self._hide(member, list(rel))

    def _create_parents(self, member: tarfile.TarInfo, parts: list[str]) -> list[str]:
        """Resolve (creating what is missing) the directory ``parts``, counted as this layer's."""
        parent, created = resolve_in_root(self.root, parts, create=True, what=self.what,
                                          member=member.name)
        for made in created:
            self._touch(list(made))
        return parent

    def _opaque_whiteout(self, member: tarfile.TarInfo, parent: list[str]) -> None:
        """``.wh..wh..opq`` in the directory ``parent``: empty it of the lower layers' entries."""
        self._opaque(parent)

    def _whiteout_directory(self, member: tarfile.TarInfo, parts: list[str]) -> list[str] | None:
        """The directory of a whiteout's victim, None when it does not exist (nothing to hide)."""
        return resolve_in_root(self.root, parts, what=self.what, member=member.name)

    def _hide(self, member: tarfile.TarInfo, rel: list[str]) -> None:
        """Hide the lower layers' ``rel`` (a whiteout's victim): remove it."""
        self._remove(member, self._path(rel))

    def _opaque(self, parent: list[str]) -> None:
        """Remove what lower layers put under the directory ``parent`` (a list of components)."""
        path = self._path(parent)
        try:
            names = os.listdir(path)
        except OSError:
            return
        for name in names:
            rel = tuple(parent + [name])
            if self._layer is not None and rel in self._layer:
                child = self._path(list(rel))
                if os.path.isdir(child) and not os.path.islink(child):
                    self._opaque(list(rel))
                continue
            self._remove(None, self._path(list(rel)))

    def _remove(self, member: tarfile.TarInfo | None, path: str) -> None:
        try:
            st = os.lstat(path)
        except OSError:
            return
        try:
            if stat.S_ISDIR(st.st_mode):
                shutil.rmtree(path)
            else:
                os.unlink(path)
        except OSError as exc:
            raise ArchiveError("%s: cannot remove %s%s: %s"
                               % (self.what, path, " for whiteout %r" % show(member.name)
                                  if member is not None else "", exc.strerror))

    # --- the end ------------------------------------------------------------------------------

    def finish(self) -> None:
        """Apply directory modes and mtimes (deepest first), then the root's own."""
        for rel in sorted(self._dirs, key=len, reverse=True):
            mode, mtime = self._dirs[rel]
            path = self._path(list(rel))
            try:
                st = os.lstat(path)
                if not stat.S_ISDIR(st.st_mode):
                    continue
                os.chmod(path, mode)
                os.utime(path, (mtime, mtime))
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    raise ArchiveError("cannot set the mode of %s: %s" % (path, exc.strerror))
        meta = self._root_meta
        try:
            if meta is not None:
                if self.as_root:
                    os.lchown(self.root, meta.uid, meta.gid)
                os.chmod(self.root, stat.S_IMODE(meta.mode))
                os.utime(self.root, (meta.mtime, meta.mtime))
            else:
                os.chmod(self.root, 0o755)
        except OSError as exc:
            raise ArchiveError("cannot set the mode of %s: %s" % (self.root, exc.strerror))


# --- sources --------------------------------------------------------------------------------------

_READ_ERRORS = (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, IOError, OSError)


def extract_tar(fileobj: Stream, writer: RootfsWriter, what: str, whiteouts: bool = False) -> int:
    """Write every member of the tar stream ``fileobj`` (already decompressed) with ``writer``."""
    try:
        tar = tarfile.open(fileobj=cast("IO[bytes]", fileobj), mode="r|")  # a stream: read only
    except _READ_ERRORS as exc:
        raise ArchiveError("%s is not a tar archive (or is damaged): %s" % (what, exc))
    count = 0
    with tar:
        iterator = iter(tar)
        while True:
            try:
                member = next(iterator)
            except StopIteration:
                break
            except ArchiveError:
                raise
            except _READ_ERRORS as exc:
                raise ArchiveError("cannot read %s after %d members: %s" % (what, count, exc))
            count += 1
            try:
                writer.add(member, functools.partial(tar.extractfile, member), whiteouts=whiteouts)
            except ArchiveError:
                raise
            except _READ_ERRORS as exc:
                raise ArchiveError("cannot read member %r of %s: %s"
                                   % (show(member.name), what, exc), member=show(member.name))
    return count


def extract_layer(hashed: HashingReader, stream: Stream, writer: RootfsWriter, what: str,
                  diff_id: str | None, error: type[BundleError] = ArchiveError) -> HashingReader:
    """Apply one image layer through ``writer`` (with whiteouts): ``stream`` is the decompressed
    blob read through ``hashed``. Both are read to their end (a short or damaged read raises
    ``error``); returns the reader of the uncompressed bytes, hashed with ``diff_id``'s algorithm
    (sha256 when there is none or it is not sha512), for the caller to check."""
    algorithm = str(diff_id).split(":", 1)[0] if diff_id is not None else "sha256"
    uncompressed = HashingReader(stream, algorithm if algorithm in ("sha256", "sha512") else "sha256")
    writer.begin_layer(what)
    extract_tar(uncompressed, writer, what, whiteouts=True)
    writer.end_layer()
    try:
        uncompressed.drain()
        hashed.drain()
    except (IOError, OSError, EOFError, ValueError) as exc:
        raise error("cannot read %s: %s" % (what, exc))
    return uncompressed


def scan_tar(fileobj: Stream, wanted: Iterable[str], found: dict[str, bytes | None], what: str,
             whiteouts: bool = False) -> dict[str, bytes | None]:
    """Update ``found`` (relpath -> bytes or None) with the regular files named in ``wanted`` as the
    tar stream leaves them (whiteouts and opaque directories hide earlier ones). Read-only: used to
    look up users before a root filesystem is written. Symlinks are not followed (the file then
    counts as missing)."""
    try:
        tar = tarfile.open(fileobj=cast("IO[bytes]", fileobj), mode="r|")  # a stream: read only
        for member in tar:
            try:
                parts = member_parts(member.name, what)
            except ArchiveError:
                continue
            rel = "/".join(parts)
            if whiteouts and parts and parts[-1].startswith(WHITEOUT_PREFIX):
                directory = "/".join(parts[:-1])
                if parts[-1] == WHITEOUT_OPAQUE:
                    hidden = [w for w in found if directory == "" or w.startswith(directory + "/")]
                else:
                    gone = "/".join(parts[:-1] + [parts[-1][len(WHITEOUT_PREFIX):]])
                    hidden = [w for w in found if w == gone or w.startswith(gone + "/")]
                for name in hidden:
                    found[name] = None
                continue
            for name in wanted:
                if rel == name:
                    data = tar.extractfile(member) if member.isreg() else None
                    found[name] = data.read() if data is not None else None
                elif name.startswith(rel + "/") and not member.isdir():
                    found[name] = None  # a parent replaced by a non-directory
    except _READ_ERRORS as exc:
        raise ArchiveError("cannot read %s: %s" % (what, exc))
    return found


def copy_tree(source: str, writer: RootfsWriter, what: str | None = None) -> None:
    """Copy the directory ``source`` into the writer's root, entry by entry, never following a
    symbolic link; hard links inside the tree stay hard links; sockets are skipped."""
    what = what or source
    seen: dict[tuple[int, int], str] = {}

    def walk(directory: str, rel: str) -> None:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            raise ArchiveError("cannot read directory %s: %s" % (directory, exc.strerror))
        for entry in entries:
            child_rel = rel + "/" + entry.name if rel else entry.name
            st = entry.stat(follow_symlinks=False)
            info = _info(child_rel, st, entry.path)
            if info is None:
                continue
            if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                if key in seen:
                    info.type = tarfile.LNKTYPE
                    info.linkname = seen[key]
                    info.size = 0
                else:
                    seen[key] = child_rel
            writer.add(info, functools.partial(_open_binary, entry.path))
            if stat.S_ISDIR(st.st_mode):
                walk(entry.path, child_rel)

    root_info = _info(".", os.lstat(source), source)
    if root_info is None:
        raise ArchiveError("%s is not a directory" % what)
    writer.what = what
    writer.add(root_info, None)
    walk(source, "")


def _open_binary(path: str) -> IO[bytes]:
    return open(path, "rb")


def _info(rel: str, st: os.stat_result, path: str) -> tarfile.TarInfo | None:
    info = tarfile.TarInfo(rel)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.mtime = st.st_mtime
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISREG(mode):
        info.type = tarfile.REGTYPE
        info.size = st.st_size
    elif stat.S_ISLNK(mode):
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(path)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    elif stat.S_ISFIFO(mode):
        info.type = tarfile.FIFOTYPE
    else:
        return None  # sockets and the like
    if not stat.S_ISLNK(mode):
        try:
            names = os.listxattr(path, follow_symlinks=False)
        except OSError:
            names = []
        headers = {}
        for name in names:
            try:
                value = os.getxattr(path, name, follow_symlinks=False)
            except OSError:
                continue
            headers["SCHILY.xattr." + name] = value.decode("utf-8", "surrogateescape")
        info.pax_headers = headers
    return info


def tree_digest(source: str) -> str:
    """``sha256:<hex>`` over a directory tree's listing: for every entry (sorted by relative path)
    its path, type, mode, owner, size, mtime (ns), link target and device numbers. File contents
    are not read: a change that keeps a file's size and mtime is not seen."""
    digest = hashlib.sha256()

    def line(rel: str, st: os.stat_result, path: str) -> None:
        mode = st.st_mode
        target = os.readlink(path) if stat.S_ISLNK(mode) else ""
        size = st.st_size if stat.S_ISREG(mode) else 0
        rdev = st.st_rdev if (stat.S_ISCHR(mode) or stat.S_ISBLK(mode)) else 0
        fields = [rel, "%o" % mode, str(st.st_uid), str(st.st_gid), str(size), str(st.st_mtime_ns),
                  target, str(rdev)]
        digest.update("\0".join(fields).encode("utf-8", "surrogateescape") + b"\n")

    def walk(directory: str, rel: str) -> None:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            raise ArchiveError("cannot read directory %s: %s" % (directory, exc.strerror))
        for entry in entries:
            child_rel = rel + "/" + entry.name if rel else entry.name
            st = entry.stat(follow_symlinks=False)
            line(child_rel, st, entry.path)
            if stat.S_ISDIR(st.st_mode):
                walk(entry.path, child_rel)

    try:
        line(".", os.lstat(source), source)
    except OSError as exc:
        raise ArchiveError("cannot read directory %s: %s" % (source, exc.strerror))
    walk(source, "")
    return "sha256:" + digest.hexdigest()
