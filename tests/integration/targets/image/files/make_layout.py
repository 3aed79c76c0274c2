# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write an OCI image layout DEST tagged TAG: a busybox layer (the host's static busybox and its
applet links, /etc/passwd and group) and a layer with /srv/hello.txt (its text: MESSAGE) and a
whiteout of /etc/group. Usage: make_layout.py DEST TAG MESSAGE"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile


def tar_bytes(entries):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, value, mode in entries:
            info = tarfile.TarInfo(name)
            info.mtime, info.mode = 1700000000, mode
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, value
                tar.addfile(info)
            else:
                info.size = len(value)
                tar.addfile(info, io.BytesIO(value))
    return buffer.getvalue()


def main(dest, tag, message):
    applets = subprocess.run(["/bin/busybox", "--list"], stdout=subprocess.PIPE, check=True,
                             universal_newlines=True).stdout.split()
    with open("/bin/busybox", "rb") as handle:
        busybox = handle.read()
    base = [(d, "dir", None, 0o1777 if d == "tmp" else 0o755)
            for d in ("bin", "etc", "proc", "sys", "dev", "tmp", "srv")]
    base += [("bin/busybox", "file", busybox, 0o755)]
    base += [("bin/" + a, "sym", "busybox", 0o777) for a in applets if a != "busybox"]
    base += [("etc/passwd", "file", b"root:x:0:0:root:/root:/bin/sh\n", 0o644),
             ("etc/group", "file", b"root:x:0:\n", 0o644)]
    top = [("etc", "dir", None, 0o755), ("etc/.wh.group", "file", b"", 0o644),
           ("srv/hello.txt", "file", message.encode() + b"\n", 0o644)]
    blobs = os.path.join(dest, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)

    def put(data):
        digest = hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, digest), "wb") as handle:
            handle.write(data)
        return "sha256:" + digest
    layers, diff_ids = [], []
    for entries in (base, top):
        data = tar_bytes(entries)
        diff_ids.append("sha256:" + hashlib.sha256(data).hexdigest())
        blob = gzip.compress(data, mtime=0)
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                       "digest": put(blob), "size": len(blob)})
    config = json.dumps({"architecture": "amd64", "os": "linux", "created": "2026-12-05T00:00:00Z",
                         "config": {"Cmd": ["cat", "/srv/hello.txt"], "Env": ["PATH=/bin"]},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    manifest = json.dumps({"schemaVersion": 2,
                           "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": put(config), "size": len(config)},
                           "layers": layers}).encode()
    with open(os.path.join(dest, "oci-layout"), "w") as handle:
        handle.write('{"imageLayoutVersion": "1.0.0"}')
    with open(os.path.join(dest, "index.json"), "w") as handle:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": put(manifest),
            "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": tag}}]},
            handle)
    print(hashlib.sha256(manifest).hexdigest())


if __name__ == "__main__":
    main(*sys.argv[1:4])
