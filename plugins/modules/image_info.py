#!/usr/bin/python
# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: image_info
short_description: List the images of the image store
version_added: 0.3.0
description:
  - Lists the images that M(oci.runtime.image) keeps in O(image_store), with the bundles
    (M(oci.runtime.bundle)) whose root filesystems use them, and what the store's unpacked layers
    take.
  - Reads only; creates nothing, not even the store.
author:
  - oci.runtime developers (@oci-runtime)
extends_documentation_fragment:
  - oci.runtime.common
  - oci.runtime.common.attributes
options:
  name:
    description:
      - Only this image (a reference, with the shorthands of M(oci.runtime.image)). Default all.
    type: str
notes:
  - O(runtime), O(runtime_root) and O(state_dir) are not used by this module.
seealso:
  - module: oci.runtime.image
"""

EXAMPLES = r"""
- name: What the store holds
  oci.runtime.image_info:
  register: store

- name: Which bundles use busybox
  ansible.builtin.debug:
    msg: "{{ (store.images | selectattr('name', 'equalto', 'docker.io/library/busybox:latest')
              | first).used_by }}"
"""

RETURN = r"""
images:
  description:
    - The images, sorted by name, each with the keys of RV(oci.runtime.image#module:image) plus
      C(used_by) and C(unpacked_size).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The canonical reference.
      type: str
    digest:
      description: Digest of the image manifest.
      type: str
    used_by:
      description: The bundle directories whose root filesystem is an overlay of this image.
      type: list
      elements: str
    unpacked_size:
      description: Bytes of its uncompressed layers (shared layers counted for each image).
      type: int
store:
  description: The store itself.
  returned: always
  type: dict
  contains:
    path:
      description: O(image_store).
      type: str
    layers:
      description: Number of unpacked layers.
      type: int
    unpacked_size:
      description: Bytes of all uncompressed layers.
      type: int
"""

from ansible_collections.oci.runtime.plugins.module_utils._module.common import run_module
from ansible_collections.oci.runtime.plugins.module_utils._module.image_info import (
    IMAGE_INFO_OPTIONS,
    ImageInfo,
)


def main():
    run_module(ImageInfo, IMAGE_INFO_OPTIONS)


if __name__ == "__main__":
    main()
