# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write the inputs of the bundle integration target into OUT (standard library only, no collection code):

  tree/                  a busybox root filesystem: bin/busybox (the static one), a symlink per applet,
                         etc/passwd and etc/group (root, app 1000:1000), etc/flavour, work/index.html
  busybox.tar.gz         that tree, etc/flavour = "gz"
  busybox.tar.xz         that tree, etc/flavour = "xz" (another root filesystem source)
  evil-dotdot.tar.gz     the tree plus the member ../../bd-escaped
  evil-symlink.tar       the tree plus etc/evil -> ../../../../etc/shadow (climbs out of the root)
  image/                 an OCI image layout tagged 1.36, two layers:
                           1 (gzip)         the tree, etc/removed, data/lower1, data/lower2
                           2 (uncompressed) etc/.wh.removed, data/.wh..wh..opq, data/upper, etc/motd
                         config: Cmd prints what the tests check, Env GREETING=from-image,
                         WorkingDir /work, User app

Prints a JSON object with the digests the tests compare against.

Usage: make_inputs.py OUT BUSYBOX
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import lzma
import os
import platform
import shutil
import subprocess
import sys
import tarfile

PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/work:/bin/sh\n"
GROUP = "root:x:0:\napp:x:1000:\n"
INDEX_HTML = "hello from the image\n"
ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}
IMAGE_CMD = ('echo "greeting=$GREETING cwd=$(pwd) uid=$(id -u)"; echo "data=$(ls /data | tr \'\\n\' ,)"; '
             'test -e /etc/removed && echo removed=present || echo removed=absent; '
             'echo "motd=$(cat /etc/motd)"; exec sleep 1000')


def make_tree(tree, busybox):
    for directory in ("bin", "etc", "work", "tmp", "proc", "sys", "dev", "root"):
        os.makedirs(os.path.join(tree, directory), exist_ok=True)
    os.chmod(os.path.join(tree, "tmp"), 0o1777)
    shutil.copyfile(busybox, os.path.join(tree, "bin", "busybox"))
    os.chmod(os.path.join(tree, "bin", "busybox"), 0o755)
    applets = subprocess.check_output([busybox, "--list"]).decode().split()
    for applet in applets:
        if applet != "busybox" and "/" not in applet:
            os.symlink("busybox", os.path.join(tree, "bin", applet))
    for name, text in (("etc/passwd", PASSWD), ("etc/group", GROUP), ("work/index.html", INDEX_HTML)):
        with open(os.path.join(tree, name), "w") as handle:
            handle.write(text)


def add_text(tar, name, text, mode=0o644):
    data = text.encode()
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, 1700000000
    tar.addfile(info, io.BytesIO(data))


def tar_bytes(tree, extra=(), flavour=None, links=()):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(tree, arcname=".")
        if flavour is not None:
            add_text(tar, "./etc/flavour", flavour + "\n")
        for name, text in extra:
            add_text(tar, name, text)
        for name, target in links:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buffer.getvalue()


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write(path, data):
    with open(path, "wb") as handle:
        handle.write(data)


def make_image(out, tree):
    layout = os.path.join(out, "image")
    os.makedirs(os.path.join(layout, "blobs", "sha256"))

    def blob(data, media_type):
        write(os.path.join(layout, "blobs", "sha256", hashlib.sha256(data).hexdigest()), data)
        return {"mediaType": media_type, "digest": sha256(data), "size": len(data)}

    layer1 = tar_bytes(tree, extra=[("./etc/removed", "removed by layer 2\n"), ("./data/lower1", "1\n"),
                                    ("./data/lower2", "2\n")])
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in ("etc/.wh.removed", "data/.wh..wh..opq"):
            add_text(tar, name, "", mode=0o600)
        add_text(tar, "data/upper", "upper\n")
        add_text(tar, "etc/motd", "from layer 2\n")
    layer2 = buffer.getvalue()
    layers = [blob(gzip.compress(layer1, mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip"),
              blob(layer2, "application/vnd.oci.image.layer.v1.tar")]
    config = blob(json.dumps({
        "architecture": ARCH.get(platform.machine(), platform.machine()), "os": "linux",
        "config": {"Entrypoint": ["sh", "-c"], "Cmd": [IMAGE_CMD],
                   "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                           "GREETING=from-image"],
                   "WorkingDir": "/work", "User": "app"},
        "rootfs": {"type": "layers", "diff_ids": [sha256(layer1), sha256(layer2)]},
    }).encode(), "application/vnd.oci.image.config.v1+json")
    manifest = blob(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                                "config": config, "layers": layers}).encode(),
                    "application/vnd.oci.image.manifest.v1+json")
    write(os.path.join(layout, "oci-layout"), b'{"imageLayoutVersion": "1.0.0"}')
    index = {"schemaVersion": 2, "manifests": [dict(manifest, annotations={
        "org.opencontainers.image.ref.name": "1.36"})]}
    write(os.path.join(layout, "index.json"), json.dumps(index).encode())
    return manifest["digest"]


def main(out, busybox):
    tree = os.path.join(out, "tree")
    make_tree(tree, busybox)
    archives = {
        "busybox.tar.gz": gzip.compress(tar_bytes(tree, flavour="gz")),
        "busybox.tar.xz": lzma.compress(tar_bytes(tree, flavour="xz"), preset=0),
        "evil-dotdot.tar.gz": gzip.compress(tar_bytes(tree, flavour="evil",
                                                      extra=[("../../bd-escaped", "escaped\n")])),
        "evil-symlink.tar": tar_bytes(tree, flavour="evil", links=[("etc/evil", "../../../../etc/shadow")]),
    }
    digests = {}
    for name, data in archives.items():
        write(os.path.join(out, name), data)
        digests[name] = sha256(data)
    digests["manifest"] = make_image(out, tree)
    print(json.dumps(digests))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
