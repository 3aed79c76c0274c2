# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ImageConverger and bundles from the image store against a real registry (Debian's
docker-registry on 127.0.0.1, started per test module) and real runc containers: pull by tag and by
digest, a new digest under the same tag, htpasswd authentication, a missing image, a registry that
goes away mid-pull, concurrent pulls that unpack once, containers whose writes stay in their bundle's
upper layer, a mount that comes back after it was lost."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import subprocess
import sys
import threading

import pytest

from conftest import REPO, wait_for

from ansible_collections.oci.runtime.plugins.module_utils._module import bundle as B
from ansible_collections.oci.runtime.plugins.module_utils._module.checkpoint import CheckpointConverger
from ansible_collections.oci.runtime.plugins.module_utils._module.container import ContainerConverger
from ansible_collections.oci.runtime.plugins.module_utils._module.image import ImageConverger
from ansible_collections.oci.runtime.plugins.module_utils._module.image_info import ImageInfo
from ansible_collections.oci.runtime.plugins.module_utils._runtime import overlay as OV
from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import RuntimeCoreError
from ansible_collections.oci.runtime.plugins.module_utils._runtime.mounts import unmount_below

sys.path.insert(0, os.path.join(REPO, "tests", "utils"))
import oci_images as O  # noqa: E402  pylint: disable=wrong-import-position

USERS = {"alice": "s3cret"}


@pytest.fixture(autouse=True)
def _no_mounts_left(tmp_path):
    """A failing test must not leave overlay mounts under its tmp dir."""
    yield
    assert unmount_below([str(tmp_path)]) == []


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """One OCI layout with tags v1 (busybox + a layer of host files), v2 (v1 + one more layer) and
    big (busybox + 6 MB of incompressible data)."""
    work = tmp_path_factory.mktemp("images")
    layout = str(work / "layout")
    base = O.busybox_layer(str(work / "busybox.tar"))
    host = O.dir_layer(str(work / "host.tar"), os.path.join(REPO, "plugins", "module_utils"), "srv/code")
    extra = O.files_layer(str(work / "extra.tar"), {"srv/v2.txt": b"two\n"}, whiteouts=["etc/group"])
    big = O.files_layer(str(work / "big.tar"), {"srv/random.bin": os.urandom(6 << 20)})
    digests = {"v1": O.make_layout(layout, [base, host], "v1"),
               "v2": O.make_layout(layout, [base, host, extra], "v2"),
               "big": O.make_layout(layout, [base, big], "big")}
    return layout, digests


@pytest.fixture(scope="module")
def registry(tmp_path_factory, images):
    """A registry with htpasswd auth holding test/app:v1 and test/big:v1."""
    layout, _digests = images
    reg = O.Registry(str(tmp_path_factory.mktemp("registry")), users=USERS).start()
    creds = ("alice", "s3cret")
    O.push(layout, "v1", reg.host + "/test/app:v1", creds)
    O.push(layout, "big", reg.host + "/test/big:v1", creds)
    yield reg
    reg.stop()


def image_params(store, name, **overrides):
    params = dict(name=name, state="present", pull="missing", source=None, tls_verify=False,
                  auth_file=None, username="alice", password="s3cret", force=False,
                  image_store=store)
    params.update(overrides)
    return params


def converge_image(store, name, check_mode=False, **overrides):
    return ImageConverger(image_params(store, name, **overrides), check_mode=check_mode).run()


def bundle_params(path, store, image, **overrides):
    params = {k: v.get("default") for k, v in B.BUNDLE_MODULE_OPTIONS.items()}
    params.update(path=path, image=image, image_store=store, readonly_rootfs=False)
    params.update(overrides)
    return params


def store_state(store):
    """What a failed pull must leave alone: names, layers, blobs, no leftovers."""
    return {sub: sorted(os.listdir(os.path.join(store, sub))) if os.path.isdir(os.path.join(store, sub))
            else None for sub in ("layers", "blobs/sha256", "tmp", "users")}, \
        open(os.path.join(store, "refs.json")).read() if os.path.exists(os.path.join(store, "refs.json")) else None


def test_pull_by_tag_then_by_digest(registry, images, tmp_path):
    _layout, digests = images
    store = str(tmp_path / "store")
    name = registry.host + "/test/app:v1"
    planned = converge_image(store, name, check_mode=True)
    assert planned["changed"] and planned["image"]["digest"] == digests["v1"]
    assert not os.path.exists(store)  # check mode writes nothing
    result = converge_image(store, name)
    assert result["changed"] and result["actions"][-1] == "unpack 2 of 2 layers"
    image = result["image"]
    assert image["name"] == name and image["digest"] == digests["v1"]
    assert image["remote_digest"] == digests["v1"] and len(image["layers"]) == 2
    assert image["config"]["Cmd"] == ["sh"] and image["created"] and image["size"] > 500000
    assert result["diff"]["before"] == {} and result["diff"]["after"]["digest"] == digests["v1"]
    assert converge_image(store, name)["changed"] is False
    assert converge_image(store, name, pull="always")["changed"] is False
    proxy = CuttingProxy(registry.port, limit=1 << 40)  # counts what the registry sends
    try:
        by_digest = "127.0.0.1:%d/test/app@%s" % (proxy.port, digests["v1"])
        result = converge_image(store, by_digest)
    finally:
        proxy.go_away()
    assert result["changed"] and result["image"]["name"] == by_digest
    assert "unpack" not in " ".join(result["actions"])  # its layers are in the store already
    assert proxy.sent < 65536  # and nothing was downloaded again
    info = ImageInfo({"image_store": store, "name": None}).run()
    assert [i["name"] for i in info["images"]] == sorted([name, by_digest])
    assert info["images"][0]["digest"] == info["images"][1]["digest"]
    assert info["store"]["layers"] == 2


def test_new_digest_under_the_same_tag(registry, images, tmp_path):
    layout, digests = images
    store = str(tmp_path / "store")
    name = registry.host + "/test/moving:1"
    O.push(layout, "v1", name, ("alice", "s3cret"))
    assert converge_image(store, name)["image"]["digest"] == digests["v1"]
    O.push(layout, "v2", name, ("alice", "s3cret"))
    assert converge_image(store, name)["changed"] is False  # pull: missing does not ask
    planned = converge_image(store, name, check_mode=True, pull="always")
    assert planned["changed"] and planned["image"]["digest"] == digests["v2"]
    result = converge_image(store, name, pull="always")
    assert result["changed"] and result["image"]["digest"] == digests["v2"]
    assert "unpack 1 of 3 layers" in result["actions"]
    assert any(a.startswith("collect 0 layers and 2 blobs") for a in result["actions"])
    assert converge_image(store, name, pull="always")["changed"] is False


def test_authentication(registry, tmp_path):
    store = str(tmp_path / "store")
    name = registry.host + "/test/app:v1"
    with pytest.raises(RuntimeCoreError) as err:
        converge_image(store, name, username=None, password=None)
    assert "refused the credentials" in err.value.msg
    with pytest.raises(RuntimeCoreError) as err:
        converge_image(store, name, password="wrong")
    assert "refused the credentials" in err.value.msg and "wrong" not in json.dumps(err.value.details)
    auth_file = tmp_path / "auth.json"
    auth_file.write_text(json.dumps({"auths": {registry.host: {"auth": "YWxpY2U6czNjcmV0"}}}))
    result = converge_image(store, name, username=None, password=None, auth_file=str(auth_file))
    assert result["changed"]
    assert os.listdir(os.path.join(store, "tmp")) == []  # the private auth file went with its dir


def test_missing_image(registry, tmp_path):
    store = str(tmp_path / "store")
    with pytest.raises(RuntimeCoreError) as err:
        converge_image(store, registry.host + "/test/nothing:v1")
    assert "has no such image" in err.value.msg
    with pytest.raises(RuntimeCoreError) as err:
        converge_image(store, registry.host + "/test/app:nope")
    assert "has no such image" in err.value.msg


class CuttingProxy(object):
    """A TCP proxy to the registry that goes away (closes every connection and stops listening)
    once it has sent ``limit`` bytes to its clients: a registry that dies mid-pull."""

    def __init__(self, target_port, limit):
        self.target_port, self.limit = target_port, limit
        self.sent = 0
        self.cut = threading.Event()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.sockets = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.cut.is_set():
            try:
                client, _addr = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            self.sockets += [client, server]
            threading.Thread(target=self._pipe, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, True), daemon=True).start()

    def _pipe(self, source, dest, counted):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                dest.sendall(data)
                if counted:
                    self.sent += len(data)
                    if self.sent > self.limit:
                        self.go_away()
                        return
        except OSError:
            pass

    def go_away(self):
        self.cut.set()
        for sock in self.sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


def test_registry_gone_mid_pull(registry, tmp_path):
    store = str(tmp_path / "store")
    converge_image(store, registry.host + "/test/app:v1")
    before = store_state(store)
    proxy = CuttingProxy(registry.port, limit=2 << 20)
    try:
        with pytest.raises(RuntimeCoreError) as err:
            converge_image(store, "127.0.0.1:%d/test/big:v1" % proxy.port)
    finally:
        proxy.go_away()
    assert proxy.cut.is_set()
    assert "could not be reached or went away" in err.value.msg, err.value.msg
    assert store_state(store) == before  # nothing half-imported, no temporary left


def _pull_in_child(store, name, queue):
    try:
        queue.put(converge_image(store, name)["actions"])
    except Exception as exc:  # pylint: disable=broad-except
        queue.put("error: %s" % exc)


def test_concurrent_pulls_unpack_once(registry, tmp_path):
    store = str(tmp_path / "store")
    name = registry.host + "/test/big:v1"
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    children = [context.Process(target=_pull_in_child, args=(store, name, queue)) for _i in range(3)]
    for child in children:
        child.start()
    results = [queue.get(timeout=120) for _child in children]
    for child in children:
        child.join(30)
    assert not [r for r in results if isinstance(r, str)], results
    unpacked = [a for actions in results for a in actions if a.startswith("unpack")]
    # imports take turns under the store's lock: the first unpacks, the others find the layers
    assert unpacked == ["unpack 2 of 2 layers"], results
    assert len(os.listdir(os.path.join(store, "layers"))) == 2
    assert os.listdir(os.path.join(store, "tmp")) == []
    info = ImageInfo({"image_store": store, "name": name}).run()
    assert info["images"][0]["name"] == name


def test_containers_from_store_bundles(registry, env, tmp_path):
    store = str(tmp_path / "store")
    name = registry.host + "/test/app:v1"
    image = converge_image(store, name)["image"]
    args = ["sh", "-c", "echo $HOSTNAME > /written; ls /srv/code > /listing; sleep 3600"]
    bundles = [str(tmp_path / ("b%d" % i)) for i in range(2)]
    for bundle in bundles:
        result = B.BundleConverger(bundle_params(bundle, store, name, args=args)).run()
        assert result["changed"] and result["image_digest"] == image["digest"]
        assert result["rootfs_digest"] == image["digest"]
    assert B.BundleConverger(bundle_params(bundles[0], store, name, args=args)).run()["changed"] is False
    with open("/proc/self/mountinfo") as handle:
        mounts = [line for line in handle if " " + bundles[0] + "/rootfs " in line
                  or " " + bundles[1] + "/rootfs " in line]
    assert len(mounts) == 2
    lowers = {line.split("lowerdir=")[1].split(",")[0] for line in mounts}
    assert len(lowers) == 1 and lowers.pop().startswith(store + "/layers/")  # shared, read-only
    containers = [env.run(bundle, "img") for bundle in bundles]
    for bundle in bundles:
        wait_for(lambda b=bundle: os.path.exists(os.path.join(b, ".oci-runtime-overlay", "upper", "listing")),
                 what="the container's write in its upper layer")
    upper = [os.path.join(b, ".oci-runtime-overlay", "upper") for b in bundles]
    assert sorted(os.listdir(upper[0])) == ["listing", "written"]
    assert "_runtime" in open(os.path.join(upper[0], "listing")).read()
    for layer in os.listdir(os.path.join(store, "layers")):
        assert not os.path.exists(os.path.join(store, "layers", layer, "diff", "written"))
    # the mount is lost (a reboot): the next create mounts it again
    env.runc("delete", "--force", containers[0].id, check=False)
    OV.unmount(bundles[0])
    assert not OV.is_mounted(bundles[0])
    again = env.run(bundles[0], "img2")
    assert OV.is_mounted(bundles[0]) and again.id
    # removing a bundle removes only its own layer; the image and the other bundle stay
    env.runc("delete", "--force", again.id, check=False)
    used = ImageInfo({"image_store": store, "name": name}).run()["images"][0]["used_by"]
    assert used == sorted(bundles)
    with pytest.raises(RuntimeCoreError) as err:
        converge_image(store, name, state="absent")
    assert bundles[0] in err.value.msg and bundles[1] in err.value.msg
    result = B.BundleConverger(bundle_params(bundles[0], store, name, state="absent")).run()
    assert result["changed"] and not os.path.exists(bundles[0])
    assert not OV.is_mounted(bundles[0])
    assert len(os.listdir(os.path.join(store, "layers"))) == 2
    assert os.path.exists(os.path.join(bundles[1], "rootfs", "bin", "busybox"))
    # force: the name goes, the layers stay for the bundle that uses them
    result = converge_image(store, name, state="absent", force=True)
    assert result["changed"] and len(os.listdir(os.path.join(store, "layers"))) == 2
    env.runc("delete", "--force", containers[1].id, check=False)
    B.BundleConverger(bundle_params(bundles[1], store, name, state="absent")).run()
    assert os.listdir(os.path.join(store, "layers")) == []


def test_bundle_needs_the_image_in_the_store(tmp_path):
    with pytest.raises(RuntimeCoreError) as err:
        B.BundleConverger(bundle_params(str(tmp_path / "b"), str(tmp_path / "store"), "busybox")).run()
    assert "is not in the image store" in err.value.msg and "oci.runtime.image" in err.value.msg


def test_checkpoint_and_restore_after_the_mount_is_lost(registry, env, tmp_path):
    store = str(tmp_path / "store")
    name = registry.host + "/test/app:v1"
    converge_image(store, name)
    bundle = str(tmp_path / "bundle")
    args = ["sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /count; sleep 0.05; done"]
    B.BundleConverger(bundle_params(bundle, store, name, args=args)).run()
    cid = env.new_id("imgcp")
    params = {"state_dir": env.state_dir, "runtime_root": env.runtime_root}
    ContainerConverger(env.params(cid, bundle)).run()
    count = os.path.join(bundle, ".oci-runtime-overlay", "upper", "count")
    wait_for(lambda: os.path.exists(count) and int(open(count).read() or 0) > 3, what="counting")
    checkpoint = dict(params, runtime=None, container=cid, name="cp1", state="present",
                      checkpoint_dir=str(tmp_path / "checkpoints"), exit=True, tcp=False,
                      unix_sockets=False, shell=False, empty_ns=[], bundle=None, criu_path=None,
                      force=False, start_timeout=60.0)
    result = CheckpointConverger(dict(checkpoint)).run()
    assert result["container"]["status"] == "stopped"
    before = int(open(count).read())
    OV.unmount(bundle)  # as after a reboot
    result = CheckpointConverger(dict(checkpoint, state="restored")).run()
    assert result["container"]["status"] == "running" and OV.is_mounted(bundle)
    wait_for(lambda: int(open(count).read() or 0) > before + 3, what="counting on from the checkpoint")
    ContainerConverger(env.params(cid, state="absent", stop_signal="KILL")).run()
    B.BundleConverger(bundle_params(bundle, store, name, state="absent")).run()


def test_import_from_layout_and_archive(images, tmp_path):
    layout, digests = images
    store = str(tmp_path / "store")
    archive = str(tmp_path / "app.tar")
    subprocess.run(["skopeo", "copy", "--quiet", "oci:%s:v2" % layout, "oci-archive:%s:v2" % archive],
                   check=True)
    result = converge_image(store, "localhost/app:2", username=None, password=None,
                            source={"type": "oci-archive", "path": archive, "ref": "v2"})
    assert result["changed"] and result["image"]["digest"] == digests["v2"]
    assert result["image"]["source"] == "oci-archive:%s:v2" % archive
    assert os.listdir(os.path.join(store, "tmp")) == []
    again = converge_image(store, "localhost/app:2", username=None, password=None,
                           source={"type": "oci-archive", "path": archive, "ref": "v2"})
    assert again["changed"] is False
    # the same name from the layout's v1: a new digest, v2's extra layer collected
    result = converge_image(store, "localhost/app:2", username=None, password=None,
                            source={"type": "oci", "path": layout, "ref": "v1"})
    assert result["changed"] and result["image"]["digest"] == digests["v1"]
    assert any(a.startswith("collect 1 layers and 2 blobs") for a in result["actions"])
    with pytest.raises(RuntimeCoreError) as err:
        converge_image(store, "localhost/app:2", username=None, password=None,
                       source={"type": "oci", "path": layout, "ref": "nope"})
    assert "has no tag 'nope'" in err.value.msg


def test_docker_schema2_image(registry, images, tmp_path):
    layout, digests = images
    store = str(tmp_path / "store")
    name = registry.host + "/test/docker:v1"
    subprocess.run(["skopeo", "copy", "--quiet", "--format", "v2s2", "--dest-tls-verify=false",
                    "--dest-creds=alice:s3cret", "oci:%s:v1" % layout, "docker://" + name], check=True)
    result = converge_image(store, name)
    image = result["image"]
    assert result["changed"] and image["digest"] != digests["v1"]  # Docker's manifest, kept as served
    assert image["remote_digest"] == image["digest"]
    manifest = json.loads(open(os.path.join(store, "blobs", "sha256", image["digest"][7:]), "rb").read())
    assert manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert converge_image(store, name, pull="always")["changed"] is False
    assert "unpack 2 of 2 layers" in result["actions"]
