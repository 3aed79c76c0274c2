# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test images and a local registry, built at test time from host files (nothing large committed).

- ``busybox_layer(dest_tar)``: a tar of a minimal busybox root filesystem (static /bin/busybox, its
  applet links, /etc/passwd and group, /tmp, ...).
- ``dir_layer(dest_tar, source, prefix)``: a tar of a host directory under ``prefix``.
- ``make_layout(path, layers, tag, config=None)``: an OCI image layout from tar files (each gzipped
  into a blob), with a config whose ``rootfs.diff_ids`` match; returns the manifest digest.
- ``Registry(workdir, users=None)``: Debian's ``docker-registry`` on 127.0.0.1 and a free port,
  filesystem storage in ``workdir``, htpasswd auth when ``users`` ({name: password}) is given (bcrypt
  entries from ``htpasswd -B``, apache2-utils). ``start()`` waits until it answers; ``stop()``.
- ``push(layout, tag, url, creds=None)``: ``skopeo copy oci:LAYOUT:TAG docker://URL``.

Standard library only (plus the busybox-static, docker-registry, apache2-utils and skopeo packages).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import time
import urllib.error
import urllib.request

BUSYBOX = "/bin/busybox"
PASSWD = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = b"root:x:0:\nnobody:x:65534:\n"


def _sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def _add_bytes(tar, name, data, mode=0o644):
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, 1700000000
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar, name, mode=0o755):
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, mode, 1700000000
    tar.addfile(info)


def busybox_layer(dest_tar, extra=None):
    """A busybox root filesystem as a tar; ``extra`` {name: bytes} adds files."""
    applets = subprocess.run([BUSYBOX, "--list"], stdout=subprocess.PIPE, check=True,
                             universal_newlines=True).stdout.split()
    with tarfile.open(dest_tar, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, mode in (("bin", 0o755), ("proc", 0o755), ("sys", 0o755), ("dev", 0o755),
                           ("tmp", 0o1777), ("etc", 0o755), ("root", 0o700)):
            _add_dir(tar, name, mode)
        with open(BUSYBOX, "rb") as handle:
            _add_bytes(tar, "bin/busybox", handle.read(), 0o755)
        for applet in applets:
            if applet == "busybox":
                continue
            info = tarfile.TarInfo("bin/" + applet)
            info.type, info.linkname, info.mtime = tarfile.SYMTYPE, "busybox", 1700000000
            tar.addfile(info)
        _add_bytes(tar, "etc/passwd", PASSWD)
        _add_bytes(tar, "etc/group", GROUP)
        for name, data in sorted((extra or {}).items()):
            _add_bytes(tar, name, data)
    return dest_tar


def files_layer(dest_tar, files, whiteouts=(), opaque=()):
    """A layer of {name: bytes} files, ``.wh.`` whiteouts of ``whiteouts`` and opaque markers in
    the ``opaque`` directories."""
    with tarfile.open(dest_tar, "w", format=tarfile.PAX_FORMAT) as tar:
        for directory in opaque:
            _add_dir(tar, directory)
            _add_bytes(tar, directory + "/.wh..wh..opq", b"")
        for name in whiteouts:
            head, _sep, tail = name.rpartition("/")
            _add_bytes(tar, (head + "/" if head else "") + ".wh." + tail, b"")
        for name, data in sorted(files.items()):
            _add_bytes(tar, name, data)
    return dest_tar


def dir_layer(dest_tar, source, prefix):
    """A host directory as a layer, under ``prefix`` (sockets and devices left out)."""
    def keep(info):
        if info.isdev() or not (info.isfile() or info.isdir() or info.issym() or info.islnk()):
            return None
        return info
    with tarfile.open(dest_tar, "w", format=tarfile.PAX_FORMAT) as tar:
        parts = prefix.strip("/").split("/")
        for end in range(1, len(parts)):
            _add_dir(tar, "/".join(parts[:end]))
        tar.add(source, arcname=prefix.strip("/"), filter=keep)
    return dest_tar


def make_layout(path, layers, tag="latest", config=None, compress=True):
    """An OCI image layout at ``path`` from layer tars (bottom first); returns the manifest digest.
    Adds to an existing layout (another tag) when there is one."""
    blobs = os.path.join(path, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)

    def put(data):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, digest[7:]), "wb") as handle:
            handle.write(data)
        return digest

    descriptors, diff_ids = [], []
    for layer_tar in layers:
        diff_ids.append(_sha256_file(layer_tar))
        blob_tmp = os.path.join(path, "layer.tmp")
        if compress:
            with open(layer_tar, "rb") as src, open(blob_tmp, "wb") as raw:
                with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
        else:
            shutil.copyfile(layer_tar, blob_tmp)
        digest = _sha256_file(blob_tmp)
        size = os.path.getsize(blob_tmp)
        os.rename(blob_tmp, os.path.join(blobs, digest[7:]))
        descriptors.append({
            "mediaType": "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if compress else ""),
            "digest": digest, "size": size})
    image_config = {"created": "2026-12-05T00:00:00Z", "architecture": "amd64", "os": "linux",
                    "config": dict({"Cmd": ["sh"], "Env": ["PATH=/bin"]}, **(config or {})),
                    "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    config_bytes = json.dumps(image_config, sort_keys=True).encode()
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": put(config_bytes), "size": len(config_bytes)},
                "layers": descriptors}
    manifest_bytes = json.dumps(manifest, sort_keys=True).encode()
    manifest_digest = put(manifest_bytes)
    index_path = os.path.join(path, "index.json")
    index = {"schemaVersion": 2, "manifests": []}
    if os.path.exists(index_path):
        with open(index_path) as handle:
            index = json.load(handle)
    index["manifests"] = [m for m in index["manifests"]
                          if m.get("annotations", {}).get("org.opencontainers.image.ref.name")
                          != tag]
    index["manifests"].append({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "digest": manifest_digest, "size": len(manifest_bytes),
                               "annotations": {"org.opencontainers.image.ref.name": tag}})
    with open(index_path, "w") as handle:
        json.dump(index, handle)
    with open(os.path.join(path, "oci-layout"), "w") as handle:
        handle.write('{"imageLayoutVersion": "1.0.0"}')
    return manifest_digest


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Registry(object):
    """Debian's docker-registry on 127.0.0.1:<free port>, storage under ``workdir``."""

    def __init__(self, workdir, users=None):
        self.workdir = workdir
        self.users = users or {}
        self.port = None
        self.proc = None

    @property
    def host(self):
        return "127.0.0.1:%d" % self.port

    def start(self, timeout=30.0):
        os.makedirs(self.workdir, exist_ok=True)
        self.port = self.port or free_port()
        config = ["version: 0.1", "log:", "  level: error", "storage:", "  filesystem:",
                  "    rootdirectory: %s" % os.path.join(self.workdir, "data"),
                  "  delete:", "    enabled: true",
                  "http:", "  addr: 127.0.0.1:%d" % self.port]
        if self.users:
            htpasswd = os.path.join(self.workdir, "htpasswd")
            first = True
            for user, password in sorted(self.users.items()):
                subprocess.run(["htpasswd", "-B", "-b"] + (["-c"] if first else [])
                               + [htpasswd, user, password], check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                first = False
            config += ["auth:", "  htpasswd:", "    realm: test", "    path: %s" % htpasswd]
        config_path = os.path.join(self.workdir, "config.yml")
        with open(config_path, "w") as handle:
            handle.write("\n".join(config) + "\n")
        log = open(os.path.join(self.workdir, "registry.log"), "ab")
        self.proc = subprocess.Popen(["docker-registry", "serve", config_path], stdout=log,
                                     stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen("http://%s/v2/" % self.host, timeout=1).close()
                return self
            except urllib.error.HTTPError as exc:
                if exc.code == 401:
                    return self
            except (urllib.error.URLError, OSError):
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("docker-registry did not start: see %s/registry.log"
                                   % self.workdir)
            time.sleep(0.05)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()
        return False


def push(layout, tag, url, creds=None):
    """skopeo copy oci:LAYOUT:TAG docker://URL (plain HTTP)."""
    argv = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false"]
    if creds:
        argv.append("--dest-creds=%s:%s" % creds)
    subprocess.run(argv + ["oci:%s:%s" % (layout, tag), "docker://" + url], check=True,
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
