# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading an OCI bundle: its config.json, checked well enough to give clear errors early."""

from __future__ import annotations

import hashlib
import json
import os
from typing import TYPE_CHECKING

from .errors import BundleError

if TYPE_CHECKING:
    from typing import Any

CONFIG_FILE = "config.json"


class BundleConfig(object):
    """A bundle's config.json: the parsed document and the sha256 digest of its bytes."""

    def __init__(self, bundle: str, config: dict[str, Any], digest: str) -> None:
        self.bundle = bundle
        self.config = config
        self.digest = digest

    @property
    def process(self) -> dict[str, Any]:
        return self.config.get("process") or {}

    def root_ids(self) -> tuple[int, int]:
        """Host uid/gid that container root maps to (process.json's rootUID/rootGID), 0 without
        a user namespace."""
        linux = self.config.get("linux") or {}
        return _host_id(linux.get("uidMappings")), _host_id(linux.get("gidMappings"))


def _host_id(mappings: list[dict[str, Any]] | None) -> int:
    for mapping in mappings or []:
        if mapping.get("containerID") == 0:
            return int(mapping.get("hostID", 0))
    return 0


def config_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def load_bundle(bundle: str) -> BundleConfig:
    """Read and check ``<bundle>/config.json``; BundleError names the path and what is wrong."""
    if not bundle or not os.path.isabs(bundle):
        raise BundleError("bundle must be an absolute path, got %r" % (bundle,))
    bundle = os.path.normpath(bundle)
    if not os.path.isdir(bundle):
        raise BundleError("bundle directory %s does not exist" % bundle)
    path = os.path.join(bundle, CONFIG_FILE)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except (IOError, OSError) as exc:
        raise BundleError("cannot read %s: %s" % (path, exc.strerror))
    try:
        config = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise BundleError("%s is not UTF-8 text (byte %d)" % (path, exc.start))
    except ValueError as exc:
        raise BundleError("%s is not valid JSON: %s" % (path, exc))
    if not isinstance(config, dict):
        raise BundleError("%s must hold a JSON object, not %s" % (path, type(config).__name__))
    process = config.get("process")
    if not isinstance(process, dict) or not process.get("args"):
        raise BundleError("%s has no process.args: the runtime would have nothing to run" % path)
    if process.get("terminal"):
        raise BundleError("%s sets process.terminal to true; oci.runtime runs containers detached "
                          "with their output in files, so set it to false" % path)
    root = (config.get("root") or {}).get("path")
    if not root:
        raise BundleError("%s has no root.path" % path)
    root_path = root if os.path.isabs(root) else os.path.join(bundle, root)
    if not os.path.isdir(root_path):
        raise BundleError("root filesystem %s (root.path in %s) does not exist" % (root_path, path))
    return BundleConfig(bundle, config, config_digest(data))
