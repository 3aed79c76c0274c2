# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading the image store without changing it: its images, the bundles that use them, its layers.

No lock is taken and nothing is created: ``refs.json`` and the user records are replaced
atomically by their writers. Nothing here calls ``fail_json``.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.oci.runtime.plugins.module_utils._runtime import overlay
from ansible_collections.oci.runtime.plugins.module_utils._runtime import reference as refs
from ansible_collections.oci.runtime.plugins.module_utils._runtime import store as st

IMAGE_INFO_OPTIONS = dict(
    name=dict(type="str"),
)


class ImageInfo(object):
    """``run()`` returns ``images`` (sorted by name) and ``store`` (path, layer count, bytes)."""

    def __init__(self, params: dict[str, Any], check_mode: bool = False) -> None:
        self.params = params
        self.store = st.Store(params.get("image_store"))
        self.name = str(refs.parse(params["name"])) if params.get("name") else None

    def run(self) -> dict[str, Any]:
        if not self.store.exists():
            return {"changed": False, "images": [],
                    "store": {"path": self.store.path, "layers": 0, "unpacked_size": 0}}
        users = self.store.users(overlay.is_user_alive, prune=False)
        images = []
        for name, record in sorted(self.store.refs().items()):
            if self.name is not None and name != self.name:
                continue
            image = self.store.load(name, record)
            info = image.describe()
            info["used_by"] = sorted(u["bundle"] for u in users if u.get("digest") == image.digest)
            info["unpacked_size"] = sum(self.store.layer_info(c).get("unpackedSize") or 0
                                        for c in image.chain_ids)
            images.append(info)
        layers = [n for n in st.list_dir(self.store.path + "/layers") if not n.startswith(".")]
        total = sum(self.store.layer_info("sha256:" + n).get("unpackedSize") or 0 for n in layers)
        return {"changed": False, "images": images,
                "store": {"path": self.store.path, "layers": len(layers), "unpacked_size": total}}
