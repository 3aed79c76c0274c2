# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Converging one bundle directory: compare the task's source and config with what was built,
then build, write and swap only what differs.

The root filesystem is compared by the digest of its source (recorded in the bundle's metadata
file), config.json by its exact bytes. Check mode computes the same plan (reading the sources,
never writing) and predicts the digests. Nothing here calls ``fail_json``: core errors propagate
to the module's ``main()``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ansible_collections.oci.runtime.plugins.module_utils._module.actions import ActionLog
from ansible_collections.oci.runtime.plugins.module_utils._runtime import overlay as OV
from ansible_collections.oci.runtime.plugins.module_utils._runtime import rootfs as R
from ansible_collections.oci.runtime.plugins.module_utils._runtime import spec as S
from ansible_collections.oci.runtime.plugins.module_utils._runtime.bundle import config_digest
from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import BundleError
from ansible_collections.oci.runtime.plugins.module_utils._runtime.store import Store

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

STATES = ("present", "absent")

# What a bundle is built from and what its config.json holds: the bundle module's own options but
# ``state`` (and the common ones it accepts unused). The plural ``containers`` module takes the same
# ones for an item's ``build`` definition, with ``path`` optional there (it defaults to the item's
# ``bundle``).
BUNDLE_OPTIONS: dict[str, dict[str, Any]] = dict(
    path=dict(type="path", required=True),
    rootfs_archive=dict(type="path"),
    rootfs_dir=dict(type="path"),
    image=dict(type="str"),
    image_ref=dict(type="str"),
    allow_devices=dict(type="bool", default=False),
    args=dict(type="list", elements="str"),
    env=dict(type="dict"),
    cwd=dict(type="str"),
    hostname=dict(type="str"),
    user=dict(type="str"),
    readonly_rootfs=dict(type="bool", default=True),
    mounts=dict(type="list", elements="dict"),
    namespaces=dict(type="list", elements="raw"),
    capabilities=dict(type="list", elements="str"),
    resources=dict(type="dict"),
    annotations=dict(type="dict"),
    spec=dict(type="dict"),
    networks=dict(type="list", elements="dict"),
)

# The rules between those options (AnsibleModule's keyword arguments of the same names; the same
# keys work inside an option's spec for suboptions).
BUNDLE_SOURCES = ("rootfs_archive", "rootfs_dir", "image")
BUNDLE_MUTUALLY_EXCLUSIVE = [BUNDLE_SOURCES]
BUNDLE_REQUIRED_BY = {"image_ref": "image"}

# The bundle module's whole option table: BUNDLE_OPTIONS, ``state``, and the common options, which
# it accepts unused (without their defaults) so that module_defaults of group/oci.runtime.oci apply.
BUNDLE_MODULE_OPTIONS: dict[str, dict[str, Any]] = dict(
    BUNDLE_OPTIONS,
    state=dict(type="str", choices=list(STATES), default="present"),
    state_dir=dict(type="path"),
    runtime=dict(type="str"),
    runtime_root=dict(type="path"),
    image_store=dict(type="path", default="/var/lib/oci-runtime/images"),
)
BUNDLE_MODULE_RULES = dict(
    mutually_exclusive=BUNDLE_MUTUALLY_EXCLUSIVE,
    required_if=[("state", "present", BUNDLE_SOURCES, True)],
    required_by=BUNDLE_REQUIRED_BY,
)


def _text(data: bytes | None) -> str:
    return "" if data is None else data.decode("utf-8", "replace")


class BundleConverger(object):
    """Converges one bundle to the task's declaration; ``run()`` returns the module result."""

    def __init__(self, params: Mapping[str, Any], check_mode: bool = False) -> None:
        self.params = params
        self.check_mode = check_mode
        self.path = R.check_bundle_path(params["path"])
        self.state = params.get("state") or "present"
        self.allow_devices = bool(params.get("allow_devices"))
        # the checked config options (state=present only)
        self.settings: dict[str, Any] = S.check_settings(params) if self.state == "present" else {}
        self.actions = ActionLog(check_mode)
        self.warnings: list[str] = []
        # config.json as built (or as check mode predicts it), once run
        self.config: dict[str, Any] | None = None

    def run(self) -> dict[str, Any]:
        if self.state == "absent":
            return self._absent()
        source = R.make_source(self.params, self.path)  # bad input fails before anything is made
        self.warnings.extend(source.warnings)
        if self.check_mode:
            return self._present(source)
        if not os.path.isdir(self.path):
            self.actions.note("create", "bundle directory")
        R.make_bundle_dir(self.path)
        with R.BundleLock(self.path):
            for leftover in R.leftovers(self.path):
                R.discard(leftover)  # of an interrupted run; never a change
            return self._present(source)

    # --- present ------------------------------------------------------------------------------

    def _present(self, source: R.Source) -> dict[str, Any]:
        exists = os.path.isdir(self.path)
        if self.check_mode and not exists:
            self.actions.note("create", "bundle directory")
        meta = R.read_metadata(self.path) if exists else None
        wanted = R.source_record(source, self.allow_devices)
        rebuild = not (meta and meta.get("source") == wanted and R.rootfs_is_dir(self.path))
        new = None
        try:
            if isinstance(source, R.StoreSource):
                read_file = self._overlay_rootfs(source, meta, wanted)
            elif rebuild:
                self.actions.note("build", "rootfs", "from %s %s" % (source.kind, source.digest))
                if self.check_mode:
                    read_file = R.source_file_reader(source)
                else:
                    new = R.build_rootfs(self.path, source, self.allow_devices)
                    read_file = R.user_file_reader(new)
            else:
                read_file = R.user_file_reader(os.path.join(self.path, R.ROOTFS_DIR))
            config = S.build_config(self.settings, image_config=source.image_config,
                                    rootfs_digest=source.digest, read_file=read_file)
            data = S.config_bytes(config)
            self.config = config
            current = R.read_config_bytes(self.path) if exists else None
            if data != current:
                self.actions.note("write", R.CONFIG_FILE)
                if not self.check_mode:
                    R.write_config(self.path, data)
            if new is not None:
                self._leave_overlay()
                R.swap_rootfs(self.path, new)
                new = None
        finally:
            if new is not None:
                R.discard(new)
        digest = config_digest(data)
        wanted_meta = R.metadata(source, self.allow_devices, digest)
        if wanted_meta != meta:
            self.actions.note("write", "metadata")
            if not self.check_mode:
                R.write_metadata(self.path, wanted_meta)
        result = self._result(before=current, after=data)
        result.update({"config_digest": digest, "rootfs_digest": source.digest})
        if source.image_digest:
            result["image_digest"] = source.image_digest
        return result

    # --- absent -------------------------------------------------------------------------------

    def _absent(self) -> dict[str, Any]:
        if not R.removable(self.path):
            return self._result(None, None)
        before = R.read_config_bytes(self.path)
        self.actions.note("remove", "bundle")
        if not self.check_mode:
            with R.BundleLock(self.path):
                self._leave_overlay()
                R.discard(self.path)
        return self._result(before, None)

    # --- a root filesystem from the image store (overlay.py) ------------------------------------

    def _overlay_rootfs(self, source: R.StoreSource, meta: Mapping[str, Any] | None,
                        wanted: Mapping[str, Any]) -> R.FileReader:
        """Make ``rootfs/`` the overlay of the store's image (a fresh upper layer when the image
        changed), mounted; returns the ``read_file`` for user lookups."""
        record = OV.read_record(self.path) if os.path.isdir(self.path) else None
        wanted_record = OV.make_record(source.store, source.image)
        root = os.path.join(self.path, R.ROOTFS_DIR)
        if record == wanted_record and meta and meta.get("source") == wanted:
            if OV.is_mounted(self.path):
                return R.user_file_reader(root)
            self.actions.note("mount", "rootfs", "overlay of %s" % source.path)
            if self.check_mode:
                return R.source_file_reader(source)
            OV.mount(self.path, record)
            return R.user_file_reader(root)
        self.actions.note("build", "rootfs", "overlay of image %s %s" % (source.path, source.digest))
        if self.check_mode:
            return R.source_file_reader(source)
        with source.store.lock():
            image = source.store.lookup(source.path)
            if image is None or image.digest != source.image.digest:
                raise BundleError("image %s changed in the store while the bundle was built: run "
                                  "the task again" % source.path, field="image")
            OV.lower_dirs(self.path, wanted_record)  # before anything of the bundle is touched
            source.store.add_user(self.path, image)
            OV.prepare(self.path)
            OV.write_record(self.path, wanted_record)
            OV.mount(self.path, wanted_record)
        if record and record.get("store") != source.store.path:
            self._forget_user(record.get("store"))
        return R.user_file_reader(root)

    def _leave_overlay(self) -> None:
        """Unmount and forget the bundle's overlay, if it has one (before its rootfs is replaced by
        a copy, or removed), and let the store collect what only this bundle kept."""
        record = OV.read_record(self.path)
        if record is None:
            return
        OV.teardown(self.path)
        self._forget_user(record.get("store"))

    def _forget_user(self, store_path: str | None) -> None:
        if not store_path:
            return
        store = Store(store_path)
        if store.exists():
            with store.lock():
                store.remove_user(self.path)
                store.gc(OV.is_user_alive)

    # --- result -------------------------------------------------------------------------------

    def _result(self, before: bytes | None, after: bytes | None) -> dict[str, Any]:
        changed = bool(self.actions)
        result: dict[str, Any] = {"changed": changed, "path": self.path,
                                  "actions": self.actions.rendered()}
        if changed:
            header = os.path.join(self.path, R.CONFIG_FILE)
            result["diff"] = {"before_header": header, "after_header": header,
                              "before": _text(before), "after": _text(after)}
        if self.warnings:
            result["warnings"] = list(self.warnings)
        return result
