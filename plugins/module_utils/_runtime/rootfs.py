# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A bundle's root filesystem: where it comes from, how it is built and swapped in, and the small
metadata file that makes the bundle module idempotent by content.

::

    <bundle>/config.json                  written by the bundle module (spec.py)
    <bundle>/rootfs/                      the root filesystem
    <bundle>/.oci-runtime-bundle.json     what the bundle was built from (see ``metadata``)
    <bundle>/rootfs.new-*/                a root filesystem being built (removed on failure)
    <bundle>/rootfs.old-*/                the previous one while it is being removed

A source (archive, directory, image) has a digest that identifies its content: the archive's
sha256, the digest of the image manifest for this platform, or, for a directory, a digest over the
listing of its tree (relative paths, types, modes, owners, sizes, mtimes, link targets; not the
contents, which would mean reading every file on every run). The recorded source is compared with
the task's; only a difference (or a missing ``rootfs/``) rebuilds. A rebuild writes a complete new
tree next to the old one and swaps it in with one ``renameat2(RENAME_EXCHANGE)`` (two renames where
that is not available), so a failed build leaves the previous bundle as it was.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from typing import TYPE_CHECKING

from . import layout as L
from .archive import (
    ArchiveError,
    HashingReader,
    RootfsWriter,
    copy_tree,
    decompressed,
    extract_tar,
    file_digest,
    read_in_root,
    scan_tar,
    sniff_file,
    tree_digest,
)
from .errors import BundleError, StateError
from .image import ImageLayout
from .reference import looks_like_path
from .reference import parse as parse_reference
from .store import Store

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable, Mapping
    from typing import IO, Any, Literal, Union

    from .archive import Stream
    from .image import Image, Platform
    from .store import StoredImage

    Source = Union["ArchiveSource", "DirectorySource", "ImageSource", "StoreSource"]
    # read_file(relpath): a file's text, None when there is none
    FileReader = Callable[[str], "str | None"]

ROOTFS_DIR = "rootfs"
META_FILE = ".oci-runtime-bundle.json"
CONFIG_FILE = "config.json"
NEW_PREFIX = "rootfs.new-"
OLD_PREFIX = "rootfs.old-"
META_SCHEMA = 1
# Bumped when the way a root filesystem is written changes, so that bundles are rebuilt.
BUILD_FORMAT = 1
USER_FILES = ("etc/passwd", "etc/group")


# --- sources --------------------------------------------------------------------------------------

class ArchiveSource(object):
    """A tar archive (plain, gzip, xz, bzip2) holding the root filesystem."""

    kind = "archive"
    image_config: dict[str, Any] | None = None
    image_digest: str | None = None

    def __init__(self, path: str) -> None:
        if not path or not os.path.isabs(path):
            raise BundleError("rootfs_archive must be an absolute path, got %r" % (path,),
                              field="rootfs_archive")
        self.path = os.path.normpath(path)
        if not os.path.isfile(self.path):
            raise BundleError("rootfs_archive %s does not exist or is not a file" % self.path,
                              field="rootfs_archive", path=self.path)
        self.warnings: list[str] = []
        self._digest: str | None = None

    @property
    def digest(self) -> str:
        if self._digest is None:
            self._digest = file_digest(self.path)
        return self._digest

    def _open(self) -> tuple[IO[bytes], HashingReader, Stream]:
        compression = sniff_file(self.path)
        try:
            raw = open(self.path, "rb")
        except (IOError, OSError) as exc:
            raise ArchiveError("cannot read %s: %s" % (self.path, exc.strerror), path=self.path)
        hashed = HashingReader(raw)
        try:
            return raw, hashed, decompressed(hashed, compression, "rootfs_archive %s" % self.path)
        except BaseException:
            raw.close()
            raise

    def build(self, writer: RootfsWriter) -> None:
        what = "rootfs_archive %s" % self.path
        raw, hashed, stream = self._open()
        with raw:
            writer.what = what
            extract_tar(stream, writer, what)
            try:
                while stream.read(1 << 20):
                    pass
                hashed.drain()
            except (IOError, OSError, EOFError, ValueError) as exc:
                raise ArchiveError("cannot read %s: %s" % (what, exc))
        if hashed.digest != self.digest:
            raise ArchiveError("%s changed while it was extracted: refusing it" % what)

    def read_files(self, names: Collection[str]) -> dict[str, bytes | None]:
        raw, dummy, stream = self._open()
        with raw:
            return scan_tar(stream, names, dict.fromkeys(names), "rootfs_archive %s" % self.path)


class DirectorySource(object):
    """A directory tree copied as it is."""

    kind = "directory"
    image_config: dict[str, Any] | None = None
    image_digest: str | None = None

    def __init__(self, path: str, bundle: str) -> None:
        if not path or not os.path.isabs(path):
            raise BundleError("rootfs_dir must be an absolute path, got %r" % (path,),
                              field="rootfs_dir")
        self.path = os.path.normpath(path)
        if not os.path.isdir(self.path):
            raise BundleError("rootfs_dir %s does not exist or is not a directory" % self.path,
                              field="rootfs_dir", path=self.path)
        real, real_bundle = os.path.realpath(self.path), os.path.realpath(bundle)
        if _inside(real, real_bundle) or _inside(real_bundle, real):
            raise BundleError("rootfs_dir %s and the bundle %s must not contain one another"
                              % (self.path, bundle), field="rootfs_dir")
        self.warnings: list[str] = []
        self._digest: str | None = None

    @property
    def digest(self) -> str:
        if self._digest is None:
            self._digest = tree_digest(self.path)
        return self._digest

    def build(self, writer: RootfsWriter) -> None:
        copy_tree(self.path, writer, "rootfs_dir %s" % self.path)

    def read_files(self, names: Iterable[str]) -> dict[str, bytes | None]:
        return {name: _encode(read_in_root(self.path, name)) for name in names}


class _ImageBacked(object):
    """What an image source answers from its image: the image's digest, config and files."""

    image: Image | StoredImage

    @property
    def image_digest(self) -> str:
        return self.image.digest

    @property
    def image_config(self) -> dict[str, Any]:
        return self.image.config

    def read_files(self, names: Iterable[str]) -> dict[str, bytes | None]:
        return self.image.read_files(list(names))


class ImageSource(_ImageBacked):
    """An OCI image layout; resolving the tag reads and verifies the manifest and config."""

    kind = "image"
    image: Image

    def __init__(self, path: str, ref: str | None = None, host: Platform | None = None) -> None:
        self.layout = ImageLayout(path)
        self.path = self.layout.path
        self.image = self.layout.resolve(ref, host)
        self.warnings = list(self.image.warnings)

    @property
    def digest(self) -> str:
        return self.image.manifest_digest

    def build(self, writer: RootfsWriter) -> None:
        self.image.apply(writer)


class StoreSource(_ImageBacked):
    """An image of the image store (oci.runtime.image): the root filesystem is an overlay of its
    layers (overlay.py), never a copy; ``build`` is not used."""

    kind = "store"
    image: StoredImage

    def __init__(self, name: str, image_store: str | None) -> None:
        self.store = Store(image_store)
        self.path = str(parse_reference(name))
        image = self.store.lookup(self.path) if self.store.exists() else None
        if image is None:
            raise BundleError("image %s is not in the image store %s: pull or import it with "
                              "oci.runtime.image first (an OCI image layout directory is given "
                              "as an absolute path)" % (self.path, self.store.path), field="image")
        self.image = image
        self.warnings: list[str] = []

    @property
    def digest(self) -> str:
        return self.image.digest

    def build(self, writer: RootfsWriter) -> None:
        raise BundleError("an image of the store is mounted, not copied")


def make_source(params: Mapping[str, Any], bundle: str) -> Source:
    """The source the task names (exactly one of rootfs_archive, rootfs_dir, image)."""
    given = [k for k in ("rootfs_archive", "rootfs_dir", "image") if params.get(k)]
    if len(given) != 1:
        raise BundleError("give exactly one of rootfs_archive, rootfs_dir and image (got %s)"
                          % (", ".join(given) or "none"))
    if params.get("image_ref") is not None and not params.get("image"):
        raise BundleError("image_ref needs image", field="image_ref")
    if given[0] == "rootfs_archive":
        return ArchiveSource(params["rootfs_archive"])
    if given[0] == "rootfs_dir":
        return DirectorySource(params["rootfs_dir"], bundle)
    if not looks_like_path(params["image"]):
        if params.get("image_ref") is not None:
            raise BundleError("image_ref names a tag of an image layout directory; with an image "
                              "of the store, put the tag in image (%s:TAG)" % params["image"],
                              field="image_ref")
        return StoreSource(params["image"], params.get("image_store"))
    return ImageSource(params["image"], params.get("image_ref"))


def source_record(source: Source, allow_devices: bool) -> dict[str, Any]:
    """What the metadata file records of a source; a difference means a rebuild."""
    return {"type": source.kind, "digest": source.digest, "allowDevices": bool(allow_devices),
            "format": BUILD_FORMAT}


def _inside(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def _encode(text: str | None) -> bytes | None:
    return None if text is None else text.encode("utf-8")


# --- metadata -------------------------------------------------------------------------------------

def read_metadata(bundle: str) -> dict[str, Any] | None:
    """The bundle's metadata, or None when it has none (or an unreadable one: rebuild)."""
    try:
        meta = L.read_json(os.path.join(bundle, META_FILE))
    except StateError:
        return None
    return meta if isinstance(meta, dict) else None


def metadata(source: Source, allow_devices: bool, config_digest: str) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "schemaVersion": META_SCHEMA, "source": source_record(source, allow_devices),
        "configDigest": config_digest}
    if source.image_digest:
        meta["imageDigest"] = source.image_digest
    return meta


def write_metadata(bundle: str, meta: Mapping[str, Any]) -> None:
    L.atomic_write_json(os.path.join(bundle, META_FILE), meta)


def read_config_bytes(bundle: str) -> bytes | None:
    """The bytes of ``<bundle>/config.json``, None when there is none. Never follows a symlink."""
    path = os.path.join(bundle, CONFIG_FILE)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise BundleError("cannot read %s: %s" % (path, exc.strerror), path=path)
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def write_config(bundle: str, data: str | bytes) -> None:
    L.atomic_write(os.path.join(bundle, CONFIG_FILE), data, mode=0o644)


# --- the root filesystem --------------------------------------------------------------------------

def rootfs_is_dir(bundle: str) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(os.path.join(bundle, ROOTFS_DIR)).st_mode)
    except OSError:
        return False


def user_file_reader(root: str) -> FileReader:
    """``read_file(relpath)`` for users.resolve_user, reading a built tree (resolved inside it)."""
    return lambda relpath: read_in_root(root, relpath)


def source_file_reader(source: Source) -> FileReader:
    """``read_file(relpath)`` reading the source itself (nothing is written), loaded once."""
    cache: dict[str, bytes | None] = {}

    def read(relpath: str) -> str | None:
        if not cache:
            cache.update(source.read_files(USER_FILES))
        data = cache.get(relpath)
        return None if data is None else data.decode("utf-8", "replace")
    return read


def build_rootfs(bundle: str, source: Source, allow_devices: bool) -> str:
    """Build the source into a new ``rootfs.new-*`` directory of the bundle and return its path.
    On any failure the new directory is removed and the error raised: nothing else is touched."""
    try:
        new = tempfile.mkdtemp(prefix=NEW_PREFIX, dir=bundle)
    except OSError as exc:
        raise BundleError("cannot create a directory in %s: %s" % (bundle, exc.strerror), path=bundle)
    try:
        writer = RootfsWriter(new, allow_devices=allow_devices)
        source.build(writer)
        writer.finish()
    except BaseException:
        discard(new)
        raise
    return new


def swap_rootfs(bundle: str, new: str) -> None:
    """Put the built tree ``new`` at ``<bundle>/rootfs`` and remove the previous one."""
    target = os.path.join(bundle, ROOTFS_DIR)
    try:
        os.lstat(target)
    except OSError:
        try:
            os.rename(new, target)
        except OSError as exc:
            raise BundleError("cannot move %s to %s: %s" % (new, target, exc.strerror), path=target)
        return
    try:
        if _exchange(new, target):
            old = new
        else:
            old = tempfile.mkdtemp(prefix=OLD_PREFIX, dir=bundle)
            os.rmdir(old)
            os.rename(target, old)
            os.rename(new, target)
    except OSError as exc:
        raise BundleError("cannot swap the new root filesystem into %s: %s"
                          % (target, exc.strerror), path=target)
    discard(old)


def _exchange(first: str, second: str) -> bool:
    """Atomically exchange two paths (renameat2 RENAME_EXCHANGE); False when unsupported."""
    try:
        import ctypes  # pylint: disable=import-outside-toplevel
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (ImportError, OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    if renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), second)


def discard(path: str) -> None:
    """Remove a tree of the bundle (never following a symlink)."""
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
        raise BundleError("cannot remove %s: %s" % (path, exc.strerror), path=path)


def leftovers(bundle: str) -> list[str]:
    """``rootfs.new-*`` and ``rootfs.old-*`` left by an interrupted run."""
    try:
        names = os.listdir(bundle)
    except OSError:
        return []
    return sorted(os.path.join(bundle, n) for n in names if n.startswith((NEW_PREFIX, OLD_PREFIX)))


# --- the bundle directory -------------------------------------------------------------------------

def check_bundle_path(path: object) -> str:
    if not path or not isinstance(path, str) or not os.path.isabs(path):
        raise BundleError("path must be an absolute path, got %r" % (path,), field="path")
    path = os.path.normpath(path)
    if path == "/":
        raise BundleError("path must not be /", field="path")
    return path


def make_bundle_dir(path: str) -> None:
    """Create the bundle directory (0700, parents as needed); refuses a non-directory."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.mkdir(path, 0o700)
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise BundleError("cannot create the bundle directory %s: %s" % (path, exc.strerror),
                              path=path)
    if not os.path.isdir(path):
        raise BundleError("path %s exists and is not a directory" % path, path=path)


def removable(path: str) -> bool | None:
    """Whether ``path`` may be removed as a bundle: None when it does not exist, True when it is a
    directory holding config.json or our metadata; raises BundleError otherwise."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise BundleError("cannot inspect %s: %s" % (path, exc.strerror), path=path)
    if stat.S_ISLNK(st.st_mode):
        raise BundleError("refusing to remove %s: it is a symbolic link, not a bundle directory"
                          % path, path=path)
    if not stat.S_ISDIR(st.st_mode):
        raise BundleError("refusing to remove %s: it is not a directory" % path, path=path)
    if not any(os.path.lexists(os.path.join(path, name)) for name in (CONFIG_FILE, META_FILE)):
        raise BundleError("refusing to remove %s: it holds neither %s nor %s, so it does not look "
                          "like a bundle" % (path, CONFIG_FILE, META_FILE), path=path)
    return True


class BundleLock(object):
    """An exclusive flock on the bundle directory itself, so two runs never build it at once."""

    def __init__(self, path: str, timeout: float = 900.0) -> None:
        self.path = path
        self.timeout = timeout
        self._fd: int | None = None

    def __enter__(self) -> BundleLock:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise BundleError("cannot open the bundle directory %s: %s" % (self.path, exc.strerror),
                              path=self.path)
        L.flock_within(fd, self.path, self.timeout, BundleError,
                       "bundle %s is being built by another run (locked for more than %ss)"
                       % (self.path, self.timeout), max_delay=0.5)
        self._fd = fd
        return self

    def __exit__(self, *exc_info: object) -> Literal[False]:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        return False
