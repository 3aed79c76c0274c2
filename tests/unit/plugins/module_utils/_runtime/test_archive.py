# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""archive.py: safe extraction (refused members, symlinks never followed), metadata, whiteouts and
opaque directories, compression, directory copies, the tree digest."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import stat
import tarfile

import pytest

from ansible_collections.oci.runtime.plugins.module_utils._runtime import archive as A
from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import BundleError

AS_ROOT = os.geteuid() == 0
MTIME = 1700000000


# --- building archives ----------------------------------------------------------------------------

def entry(name, kind="file", data=b"", mode=None, linkname="", uid=0, gid=0, mtime=MTIME,
          major=0, minor=0, xattrs=None):
    info = tarfile.TarInfo(name)
    info.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
                 "hardlink": tarfile.LNKTYPE, "chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE,
                 "fifo": tarfile.FIFOTYPE}[kind]
    info.mode = mode if mode is not None else (0o755 if kind == "dir" else 0o644)
    info.linkname = linkname
    info.uid, info.gid = uid, gid
    info.mtime = mtime
    info.devmajor, info.devminor = major, minor
    if xattrs:
        info.pax_headers = {"SCHILY.xattr." + k: v for k, v in xattrs.items()}
    if kind == "file":
        info.size = len(data)
    return info, (data if kind == "file" else None)


def tar_bytes(entries, fmt=tarfile.PAX_FORMAT):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def extract(root, entries, whiteouts=False, allow_devices=False, writer=None):
    writer = writer or A.RootfsWriter(str(root), allow_devices=allow_devices)
    A.extract_tar(io.BytesIO(tar_bytes(entries)), writer, "test.tar", whiteouts=whiteouts)
    return writer


def build(tmp_path, entries, **kwargs):
    root = tmp_path / "rootfs"
    root.mkdir(mode=0o700)
    writer = extract(root, entries, **kwargs)
    writer.finish()
    return root


def refused(tmp_path, entries, **kwargs):
    with pytest.raises(A.ArchiveError) as err:
        build(tmp_path, entries, **kwargs)
    assert isinstance(err.value, BundleError)
    return err.value


# --- extraction -----------------------------------------------------------------------------------

def test_extracts_every_kind_with_its_metadata(tmp_path):
    root = build(tmp_path, [
        entry("./", "dir", mode=0o751),
        entry("./bin/", "dir", mode=0o700, mtime=MTIME + 1),
        entry("./bin/busybox", data=b"\x7fELF...", mode=0o4755, uid=12, gid=34, mtime=MTIME + 2),
        entry("./bin/sh", "symlink", linkname="busybox", uid=5, gid=6, mtime=MTIME + 3),
        entry("./bin/ash", "hardlink", linkname="./bin/busybox"),
        entry("./etc/passwd", data=b"root:x:0:0::/:/bin/sh\n", mode=0o600),
        entry("./run/fifo", "fifo", mode=0o640),
        entry("./abs", "symlink", linkname="/bin/busybox"),
    ])
    busybox = root / "bin" / "busybox"
    assert busybox.read_bytes() == b"\x7fELF..."
    st = os.lstat(busybox)
    assert stat.S_IMODE(st.st_mode) == 0o4755
    assert st.st_mtime == MTIME + 2
    assert os.readlink(root / "bin" / "sh") == "busybox"
    assert os.lstat(root / "bin" / "sh").st_mtime == MTIME + 3
    assert os.lstat(root / "bin" / "ash").st_ino == st.st_ino
    assert stat.S_ISFIFO(os.lstat(root / "run" / "fifo").st_mode)
    assert stat.S_IMODE(os.lstat(root / "run" / "fifo").st_mode) == 0o640
    assert stat.S_IMODE(os.lstat(root / "etc" / "passwd").st_mode) == 0o600
    assert os.readlink(root / "abs") == "/bin/busybox"
    # directories: their own mode and mtime survive the files written into them afterwards
    assert stat.S_IMODE(os.lstat(root / "bin").st_mode) == 0o700
    assert os.lstat(root / "bin").st_mtime == MTIME + 1
    assert stat.S_IMODE(os.lstat(root).st_mode) == 0o751
    # implicit parents are 0755
    assert stat.S_IMODE(os.lstat(root / "etc").st_mode) == 0o755
    if AS_ROOT:
        assert (st.st_uid, st.st_gid) == (12, 34)
        assert (os.lstat(root / "bin" / "sh").st_uid, os.lstat(root / "bin" / "sh").st_gid) == (5, 6)


def test_root_mode_defaults_to_0755(tmp_path):
    root = build(tmp_path, [entry("a", data=b"x")])
    assert stat.S_IMODE(os.lstat(root).st_mode) == 0o755


def test_extended_attributes(tmp_path):
    root = build(tmp_path, [entry("f", data=b"x", xattrs={"user.origin": "test"})])
    try:
        value = os.getxattr(root / "f", "user.origin")
    except OSError:
        pytest.skip("no user xattrs on this file system")
    assert value == b"test"


@pytest.mark.parametrize("name", ["/etc/passwd", "/abs/"])
def test_refuses_absolute_names(tmp_path, name):
    err = refused(tmp_path, [entry("ok", data=b"1"), entry(name, data=b"x")])
    assert repr(name) in err.msg and "absolute path" in err.msg
    assert err.details["member"] == name


@pytest.mark.parametrize("name", ["../evil", "a/../../evil", "./a/../b", "a/.."])
def test_refuses_dotdot(tmp_path, name):
    err = refused(tmp_path, [entry(name, data=b"x")])
    assert repr(name) in err.msg and "'..'" in err.msg


@pytest.mark.parametrize("linkname, words", [
    ("/etc/passwd", "absolute path"),
    ("../outside", "outside the root filesystem"),
    ("a/../../outside", "outside the root filesystem"),
    ("missing", "does not exist"),
    ("dir", "directory"),
])
def test_refuses_bad_hardlinks(tmp_path, linkname, words):
    err = refused(tmp_path, [entry("dir/", "dir"), entry("evil", "hardlink", linkname=linkname)])
    assert "'evil'" in err.msg and words in err.msg, err.msg
    assert err.details["member"] == "evil"


@pytest.mark.parametrize("name, target", [
    ("escape", "../etc"),
    ("a/escape", "../../etc/shadow"),
    ("a/b/c", "../../../x"),
    ("a/sneaky", "b/../../../x"),
])
def test_refuses_symlinks_escaping_the_root(tmp_path, name, target):
    err = refused(tmp_path, [entry(name, "symlink", linkname=target)])
    assert repr(name) in err.msg and "points outside the root filesystem" in err.msg
    assert repr(target) in err.msg


@pytest.mark.parametrize("name, target", [
    ("a/b/up", "../../x"),
    ("a/abs", "/../../../etc"),  # absolute: resolved inside the root, cannot climb out
    ("self", "."),
    ("a/b/c", "../c/../d"),
])
def test_accepts_symlinks_that_stay_inside(tmp_path, name, target):
    root = build(tmp_path, [entry(name, "symlink", linkname=target)])
    assert os.readlink(os.path.join(root, name)) == target


@pytest.mark.parametrize("kind", ["chr", "blk"])
def test_refuses_device_nodes_unless_allowed(tmp_path, kind):
    err = refused(tmp_path, [entry("dev/null", kind, major=1, minor=3)])
    assert "'dev/null'" in err.msg and "device node" in err.msg and "allow_devices" in err.msg
    assert "1:3" in err.msg


@pytest.mark.skipif(not AS_ROOT, reason="mknod of a device needs root")
def test_writes_device_nodes_when_allowed(tmp_path):
    root = build(tmp_path, [entry("dev/null", "chr", major=1, minor=3, mode=0o666)], allow_devices=True)
    st = os.lstat(root / "dev" / "null")
    assert stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3


def test_parent_symlink_to_root_is_resolved_inside(tmp_path):
    host_file = "/etc/oci-runtime-test-%d" % os.getpid()
    root = build(tmp_path, [
        entry("evil", "symlink", linkname="/"),
        entry("evil/etc/" + os.path.basename(host_file), data=b"pwned"),
        entry("evil/evil/evil/x", data=b"deep"),
    ])
    assert not os.path.lexists(host_file)
    assert (root / "etc" / os.path.basename(host_file)).read_bytes() == b"pwned"
    assert (root / "x").read_bytes() == b"deep"
    assert os.readlink(root / "evil") == "/"


def test_parent_symlink_inside_is_followed_inside(tmp_path):
    root = build(tmp_path, [
        entry("usr/lib/", "dir"),
        entry("lib", "symlink", linkname="usr/lib"),
        entry("lib/libc.so", data=b"libc"),
        entry("usr/bin/", "dir"),
        entry("bin", "symlink", linkname="/usr/bin"),
        entry("bin/sh", data=b"sh"),
    ])
    assert (root / "usr" / "lib" / "libc.so").read_bytes() == b"libc"
    assert (root / "usr" / "bin" / "sh").read_bytes() == b"sh"
    assert os.path.islink(root / "lib")


def test_symlink_loop_in_parent(tmp_path):
    err = refused(tmp_path, [entry("a", "symlink", linkname="b"), entry("b", "symlink", linkname="a"),
                             entry("a/x", data=b"x")])
    assert "too many levels of symbolic links" in err.msg and "'a/x'" in err.msg


def test_parent_that_is_a_file(tmp_path):
    err = refused(tmp_path, [entry("f", data=b"x"), entry("f/x", data=b"y")])
    assert "'f/x'" in err.msg and "is not a directory" in err.msg


def test_never_writes_through_an_existing_symlink(tmp_path):
    outside = tmp_path / "outside"
    outside.write_bytes(b"original")
    root = build(tmp_path, [
        entry("link", "symlink", linkname=str(outside)),  # absolute: fine as a link in the rootfs
        entry("link", data=b"replaced"),                  # replaces the link, never writes through
        entry("dirlink", "symlink", linkname=str(tmp_path)),
        entry("dirlink/", "dir"),                         # becomes a real directory
    ])
    assert outside.read_bytes() == b"original"
    assert (root / "link").read_bytes() == b"replaced" and not os.path.islink(root / "link")
    assert os.path.isdir(root / "dirlink") and not os.path.islink(root / "dirlink")


def test_hardlink_through_a_symlinked_parent_stays_inside(tmp_path):
    # The target path of the hard link runs through a symlink to /, which is resolved inside the
    # root, where there is no such file: refused, and the outside file keeps its single link.
    outside = tmp_path / "secret"
    outside.write_bytes(b"secret")
    err = refused(tmp_path, [entry("up", "symlink", linkname="/"),
                             entry("stolen", "hardlink", linkname="up" + str(outside))])
    assert "'stolen'" in err.msg and "does not exist" in err.msg
    assert os.lstat(outside).st_nlink == 1


def test_replacing_kinds(tmp_path):
    root = build(tmp_path, [
        entry("d/", "dir"), entry("d/x", data=b"x"),
        entry("d", data=b"now a file"),
        entry("f", data=b"file"),
        entry("f/", "dir", mode=0o700),
        entry("same", data=b"1"), entry("same", data=b"22"),
    ])
    assert (root / "d").read_bytes() == b"now a file"
    assert os.path.isdir(root / "f")
    assert (root / "same").read_bytes() == b"22"


def test_root_entry_must_be_a_directory(tmp_path):
    err = refused(tmp_path, [entry("./", data=b"x")])
    assert "root of the file system" in err.msg


def test_damaged_and_non_tar_input(tmp_path):
    root = tmp_path / "r"
    root.mkdir()
    data = tar_bytes([entry("a", data=b"x" * 5000), entry("b", data=b"y")])
    with pytest.raises(A.ArchiveError) as err:
        A.extract_tar(io.BytesIO(data[:2000]), A.RootfsWriter(str(root)), "cut.tar")
    assert "cut.tar" in err.value.msg
    with pytest.raises(A.ArchiveError) as err:
        A.extract_tar(io.BytesIO(b"this is not a tar archive" * 40), A.RootfsWriter(str(root)), "junk")
    assert "junk" in err.value.msg


# --- whiteouts ------------------------------------------------------------------------------------

LOWER = [
    entry("a/", "dir"), entry("a/x", data=b"x"), entry("a/y", data=b"y"),
    entry("b/", "dir"), entry("b/z", data=b"z"), entry("b/sub/", "dir"), entry("b/sub/deep", data=b"d"),
    entry("c", data=b"c"), entry("keep", data=b"k"),
]


def layers(tmp_path, *layer_list):
    root = tmp_path / "rootfs"
    root.mkdir()
    writer = A.RootfsWriter(str(root))
    for index, entries in enumerate(layer_list):
        writer.begin_layer("layer %d" % (index + 1))
        A.extract_tar(io.BytesIO(tar_bytes(entries)), writer, "layer %d" % (index + 1), whiteouts=True)
        writer.end_layer()
    writer.finish()
    return root


def listing(root):
    found = []
    for directory, dirs, names in os.walk(root):
        for name in dirs + names:
            found.append(os.path.relpath(os.path.join(directory, name), root))
    return sorted(found)


def test_whiteouts_and_opaque_directories(tmp_path):
    root = layers(tmp_path, LOWER, [
        entry(".wh.c", data=b""),
        entry("a/.wh.x", data=b""),
        entry("b/", "dir"),
        entry("b/.wh..wh..opq", data=b""),
        entry("b/new", data=b"n"),
        entry(".wh.nonexistent", data=b""),
        entry("missing/.wh.x", data=b""),
        entry(".wh..wh.plnk", data=b""),
    ])
    assert listing(root) == ["a", "a/y", "b", "b/new", "keep"]


def test_opaque_marker_keeps_the_layers_own_entries_before_it(tmp_path):
    root = layers(tmp_path, LOWER, [
        entry("b/sub/", "dir"),
        entry("b/sub/mine", data=b"m"),
        entry("b/early", data=b"e"),
        entry("b/.wh..wh..opq", data=b""),
        entry("b/late", data=b"l"),
    ])
    # b/z and b/sub/deep were the lower layer's: hidden; the layer's own entries stay.
    assert listing(root) == ["a", "a/x", "a/y", "b", "b/early", "b/late", "b/sub", "b/sub/mine", "c", "keep"]


def test_whiteout_never_removes_the_same_layers_entry(tmp_path):
    root = layers(tmp_path, LOWER, [entry("fresh", data=b"f"), entry(".wh.fresh", data=b""),
                                    entry(".wh.keep", data=b""), entry("keep", data=b"again")])
    assert (root / "fresh").read_bytes() == b"f"
    assert (root / "keep").read_bytes() == b"again"


def test_whiteout_of_a_directory_and_through_symlinked_parent(tmp_path):
    root = layers(tmp_path, LOWER + [entry("link", "symlink", linkname="/a")],
                  [entry(".wh.b", data=b""), entry("link/.wh.y", data=b"")])
    assert listing(root) == ["a", "a/x", "c", "keep", "link"]


def test_opaque_root(tmp_path):
    root = layers(tmp_path, LOWER, [entry("only", data=b"o"), entry(".wh..wh..opq", data=b"")])
    assert listing(root) == ["only"]


def test_whiteouts_only_when_asked(tmp_path):
    root = build(tmp_path, [entry(".wh.c", data=b"plain"), entry("b/.wh..wh..opq", data=b"")])
    assert (root / ".wh.c").read_bytes() == b"plain"
    assert (root / "b" / ".wh..wh..opq").exists()


def test_whiteout_names_that_are_not_names(tmp_path):
    with pytest.raises(A.ArchiveError) as err:
        layers(tmp_path, [entry(".wh.", data=b"")])
    assert "'.wh.'" in err.value.msg


# --- compression ----------------------------------------------------------------------------------

@pytest.mark.parametrize("compress, name", [
    (lambda d: d, None), (gzip.compress, "gzip"), (lzma.compress, "xz"), (bz2.compress, "bzip2"),
])
def test_compressions(tmp_path, compress, name):
    data = compress(tar_bytes([entry("hello", data=b"world")]))
    assert A.sniff_compression(data[:6]) == name
    root = tmp_path / "r"
    root.mkdir()
    raw = io.BytesIO(data)
    hashed = A.HashingReader(raw)
    A.extract_tar(A.decompressed(hashed, name, "t"), A.RootfsWriter(str(root)), "t")
    hashed.drain()
    assert (root / "hello").read_bytes() == b"world"
    import hashlib
    assert hashed.digest == "sha256:" + hashlib.sha256(data).hexdigest()


def test_zstd_is_refused_clearly():
    assert A.sniff_compression(b"\x28\xb5\x2f\xfd\x00\x00") == "zstd"
    try:
        from compression import zstd  # noqa: F401 pylint: disable=unused-import
    except ImportError:
        with pytest.raises(A.ArchiveError) as err:
            A.decompressed(io.BytesIO(b""), "zstd", "layer 2")
        assert "layer 2 is zstd-compressed" in err.value.msg and "gzip" in err.value.msg


# --- scanning, reading inside a root --------------------------------------------------------------

def test_scan_tar_follows_whiteouts():
    lower = tar_bytes([entry("etc/passwd", data=b"one"), entry("etc/group", data=b"g")])
    upper = tar_bytes([entry("etc/.wh.group", data=b""), entry("etc/passwd", data=b"two")])
    found = dict.fromkeys(["etc/passwd", "etc/group"])
    A.scan_tar(io.BytesIO(lower), found, found, "l1", whiteouts=True)
    A.scan_tar(io.BytesIO(upper), found, found, "l2", whiteouts=True)
    assert found == {"etc/passwd": b"two", "etc/group": None}
    A.scan_tar(io.BytesIO(tar_bytes([entry(".wh..wh..opq", data=b"")])), found, found, "l3", whiteouts=True)
    assert found == {"etc/passwd": None, "etc/group": None}
    plain = dict.fromkeys(["etc/passwd"])
    A.scan_tar(io.BytesIO(tar_bytes([entry("./etc/passwd", data=b"p"), entry("../x", data=b"")])),
               ["etc/passwd"], plain, "plain")
    assert plain == {"etc/passwd": b"p"}


def test_read_in_root_resolves_inside(tmp_path):
    root = tmp_path / "root"
    (root / "real" / "etc").mkdir(parents=True)
    (root / "real" / "etc" / "passwd").write_text("inside")
    os.symlink("/real/etc", root / "etc")
    os.symlink("/etc/shadow", root / "shadowlink")
    assert A.read_in_root(str(root), "etc/passwd") == "inside"
    assert A.read_in_root(str(root), "etc/missing") is None
    assert A.read_in_root(str(root), "shadowlink") is None  # /etc/shadow inside the root: absent
    os.symlink("loop", root / "loop")
    assert A.read_in_root(str(root), "loop") is None


# --- directory copies and the tree digest ---------------------------------------------------------

def make_tree(base):
    base.mkdir()
    (base / "bin").mkdir()
    (base / "bin" / "tool").write_bytes(b"tool")
    os.chmod(base / "bin" / "tool", 0o750)
    os.link(base / "bin" / "tool", base / "bin" / "tool2")
    os.symlink("tool", base / "bin" / "alias")
    os.mkfifo(base / "fifo")
    os.utime(base / "bin" / "tool", (MTIME, MTIME))
    return base


def test_copy_tree(tmp_path):
    source = make_tree(tmp_path / "src")
    root = tmp_path / "rootfs"
    root.mkdir(mode=0o700)
    writer = A.RootfsWriter(str(root))
    A.copy_tree(str(source), writer)
    writer.finish()
    assert listing(root) == listing(source)
    assert (root / "bin" / "tool").read_bytes() == b"tool"
    assert stat.S_IMODE(os.lstat(root / "bin" / "tool").st_mode) == 0o750
    assert os.lstat(root / "bin" / "tool").st_mtime == MTIME
    assert os.lstat(root / "bin" / "tool").st_ino == os.lstat(root / "bin" / "tool2").st_ino
    assert os.readlink(root / "bin" / "alias") == "tool"
    assert stat.S_ISFIFO(os.lstat(root / "fifo").st_mode)
    assert stat.S_IMODE(os.lstat(root).st_mode) == stat.S_IMODE(os.lstat(source).st_mode)


def test_copy_tree_refuses_escaping_symlinks(tmp_path):
    source = make_tree(tmp_path / "src")
    os.symlink("../../../etc/passwd", source / "bin" / "evil")
    root = tmp_path / "rootfs"
    root.mkdir()
    with pytest.raises(A.ArchiveError) as err:
        A.copy_tree(str(source), A.RootfsWriter(str(root)), "rootfs_dir %s" % source)
    assert "'bin/evil'" in err.value.msg and "rootfs_dir" in err.value.msg


def test_tree_digest(tmp_path):
    source = make_tree(tmp_path / "src")
    first = A.tree_digest(str(source))
    assert first.startswith("sha256:") and A.tree_digest(str(source)) == first
    os.utime(source / "bin" / "tool", (MTIME + 1, MTIME + 1))
    second = A.tree_digest(str(source))
    assert second != first
    os.chmod(source / "bin" / "tool", 0o755)
    third = A.tree_digest(str(source))
    assert third != second
    os.unlink(source / "bin" / "alias")
    os.symlink("tool2", source / "bin" / "alias")
    os.utime(source / "bin" / "alias", (0, 0), follow_symlinks=False)
    os.utime(source / "bin", (0, 0))
    fourth = A.tree_digest(str(source))
    assert fourth != third
    with pytest.raises(A.ArchiveError):
        A.tree_digest(str(tmp_path / "missing"))


def test_file_digest(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert A.file_digest(str(path)) == \
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    with pytest.raises(A.ArchiveError):
        A.file_digest(str(tmp_path / "missing"))
