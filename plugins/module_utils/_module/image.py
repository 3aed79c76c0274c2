# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Converging one image of the store: pull it (skopeo), import it from an OCI layout or archive,
or remove it (and collect the layers nothing uses any more).

``pull: missing`` contacts the registry only when the store lacks the name; ``pull: always`` asks
the registry for the digest of the reference every run and pulls only when it differs from the one
recorded at the last pull. A local ``source`` is read every run and imported when its manifest
digest differs. Check mode asks the registry (read-only) and reads the source but writes nothing.
Nothing here calls ``fail_json``: core errors propagate to the module's ``main()``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

from ansible_collections.oci.runtime.plugins.module_utils._runtime import overlay
from ansible_collections.oci.runtime.plugins.module_utils._runtime import reference as refs
from ansible_collections.oci.runtime.plugins.module_utils._runtime import skopeo
from ansible_collections.oci.runtime.plugins.module_utils._runtime import store as st
from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import InvalidValueError

STATES = ("present", "absent")
PULL_POLICIES = ("missing", "always")
SOURCE_TYPES = ("oci", "oci-archive")

IMAGE_OPTIONS = dict(
    name=dict(type="str", required=True),
    state=dict(type="str", choices=list(STATES), default="present"),
    pull=dict(type="str", choices=list(PULL_POLICIES), default="missing"),
    source=dict(type="dict", options=dict(
        type=dict(type="str", choices=list(SOURCE_TYPES), required=True),
        path=dict(type="path", required=True),
        ref=dict(type="str"),
    )),
    tls_verify=dict(type="bool", default=True),
    auth_file=dict(type="path"),
    username=dict(type="str"),
    password=dict(type="str", no_log=True),
    force=dict(type="bool", default=False),
)
IMAGE_RULES = dict(
    required_together=[("username", "password")],
    mutually_exclusive=[("auth_file", "username"), ("source", "auth_file"), ("source", "username")],
)


class _SystemTempDir(object):
    """A private temporary directory outside the store (check mode, archive reads)."""

    def __enter__(self) -> str:
        self.path = tempfile.mkdtemp(prefix="oci-runtime-image-")
        return self.path

    def __exit__(self, *exc_info: object) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _brief(image: st.StoredImage | None) -> dict[str, Any]:
    return {"name": image.name, "digest": image.digest} if image is not None else {}


class ImageConverger(object):
    """Converges one image to the task's declaration; ``run()`` returns the module result."""

    def __init__(self, params: dict[str, Any], check_mode: bool = False) -> None:
        self.params = params
        self.check_mode = check_mode
        self.ref = refs.parse(params["name"])
        self.name = str(self.ref)
        self.store = st.Store(params.get("image_store"))
        self.state = params.get("state") or "present"
        self.source = params.get("source")
        if self.source and self.source.get("path") and not os.path.isabs(self.source["path"]):
            raise InvalidValueError("source.path must be an absolute path, got %r"
                                    % self.source["path"])
        self.access = skopeo.Access(params.get("tls_verify", True), params.get("auth_file"),
                                    params.get("username"), params.get("password"))
        self.actions: list[str] = []

    def run(self) -> dict[str, Any]:
        if self.state == "absent":
            return self._absent()
        current = self.store.lookup(self.name) if self.store.exists() else None
        if self.source:
            return self._import(current, self.source)
        if current is not None and (self.params.get("pull") or "missing") == "missing":
            return self._result(current, current)
        return self._pull(current)

    # --- present ------------------------------------------------------------------------------

    def _pull(self, current: st.StoredImage | None) -> dict[str, Any]:
        temp = _SystemTempDir() if self.check_mode else self.store.pull_dir()
        with temp as workdir:
            remote = skopeo.remote_digest(self.ref, self.access, workdir)
            if current is not None and remote in (current.record.get("remoteDigest"),
                                                  current.digest):
                return self._result(current, current)
            self.actions.append("pull %s (%s)" % (self.name, remote))
            if self.check_mode:
                return self._result(current, None, predicted={"name": self.name,
                                                              "digest": remote})
            fetched = st.fetched_from_store(self.store, remote, self.ref.transport()) \
                if self.store.exists() else None
            if fetched is None:
                image_dir = os.path.join(workdir, "image")
                skopeo.copy_to_dir(self.ref.transport(), image_dir, workdir, self.access,
                                   self.ref.registry)
                fetched = st.fetched_from_dir(image_dir, self.ref.transport())
            return self._add(current, fetched, self.ref.transport(), remote)

    def _import(self, current: st.StoredImage | None, source: dict[str, Any]) -> dict[str, Any]:
        kind, path, ref = source["type"], source["path"], source.get("ref")
        label = "%s:%s%s" % (kind, path, ":" + ref if ref else "")
        if kind == "oci":
            return self._import_fetched(current, st.fetched_from_layout(path, ref), label)
        if not os.path.isfile(path):
            raise st.StoreError("source.path %s does not exist or is not a file (an oci-archive)"
                                % path, path=path)
        temp = _SystemTempDir() if self.check_mode else self.store.pull_dir()
        with temp as workdir:
            image_dir = os.path.join(workdir, "image")
            skopeo.copy_to_dir("oci-archive:%s%s" % (path, ":" + ref if ref else ""), image_dir,
                               workdir)
            return self._import_fetched(current, st.fetched_from_dir(image_dir, label), label)

    def _import_fetched(self, current: st.StoredImage | None, fetched: st.Fetched,
                        label: str) -> dict[str, Any]:
        if current is not None and current.digest == fetched.manifest_digest:
            return self._result(current, current)
        self.actions.append("import %s from %s (%s)" % (self.name, label, fetched.manifest_digest))
        if self.check_mode:
            return self._result(current, None, predicted={"name": self.name,
                                                          "digest": fetched.manifest_digest})
        return self._add(current, fetched, label, None)

    def _add(self, current: st.StoredImage | None, fetched: st.Fetched, label: str,
             remote: str | None) -> dict[str, Any]:
        self.store.create()
        with self.store.lock():
            image, unpacked = self.store.add(self.name, fetched, label, remote)
            if unpacked:
                self.actions.append("unpack %d of %d layers" % (unpacked, len(image.chain_ids)))
            if current is not None and current.digest != image.digest:
                removed = self.store.gc(overlay.is_user_alive)
                self._note_collected(removed)
        return self._result(current, image)

    # --- absent -------------------------------------------------------------------------------

    def _absent(self) -> dict[str, Any]:
        current = self.store.lookup(self.name) if self.store.exists() else None
        if current is None:
            return self._result(None, None)
        users = sorted(u["bundle"] for u in self.store.users(overlay.is_user_alive, prune=False)
                       if u.get("digest") == current.digest)
        others = [n for n, r in self.store.refs().items()
                  if n != self.name and r.get("digest") == current.digest]
        if users and not others and not self.params.get("force"):
            raise st.StoreError("image %s is used by the bundle%s %s: remove %s first, or set "
                                "force: true (its layers then stay until those bundles are removed)"
                                % (self.name, "s" if len(users) > 1 else "", ", ".join(users),
                                   "them" if len(users) > 1 else "it"))
        self.actions.append("remove %s" % self.name)
        if not self.check_mode:
            with self.store.lock():
                self.store.remove(self.name)
                self._note_collected(self.store.gc(overlay.is_user_alive))
        result = self._result(current, None)
        result["image"] = {}
        return result

    def _note_collected(self, removed: dict[str, list[str]]) -> None:
        if removed["layers"] or removed["blobs"]:
            self.actions.append("collect %d layers and %d blobs no image uses"
                                % (len(removed["layers"]), len(removed["blobs"])))

    # --- result -------------------------------------------------------------------------------

    def _result(self, before: st.StoredImage | None, after: st.StoredImage | None,
                predicted: dict[str, Any] | None = None) -> dict[str, Any]:
        changed = bool(self.actions)
        result = {"changed": changed, "actions": list(self.actions),
                  "image": after.describe() if after is not None else (predicted or {})}
        if changed:
            result["diff"] = {"before_header": self.name, "after_header": self.name,
                              "before": _brief(before), "after": _brief(after) or predicted or {}}
        return result
