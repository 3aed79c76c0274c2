#!/usr/bin/python
# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: image
short_description: Pull an image into the image store, import one, or remove one
version_added: 0.3.0
description:
  - Keeps an image in the image store (O(image_store)), from a registry (through C(skopeo)) or from
    an OCI image layout or C(oci-archive) file. M(oci.runtime.bundle) builds bundles from the store,
    sharing the image's layers read-only between all of them.
  - The store is content-addressed. Every layer is verified against its digest and its
    uncompressed digest (C(rootfs.diff_ids)), and unpacked B(once), into a directory of its own
    (OCI whiteouts become overlayfs whiteouts), with the refusals of M(oci.runtime.bundle) (absolute
    names, C(..), links out of the tree, device nodes). Compressed layers are not kept.
  - An image is recorded under its name only once all its layers are in the store, so a pull that
    fails (a registry that goes away, a corrupt layer) leaves the store as it was.
  - Concurrent runs are safe. Downloads happen outside the store's lock, imports under it; a layer
    already in the store is not unpacked again.
  - Removing an image collects the layers and blobs that no other image and no bundle uses.
author:
  - oci.runtime developers (@oci-runtime)
extends_documentation_fragment:
  - oci.runtime.common
  - oci.runtime.common.attributes
options:
  name:
    description:
      - The image reference, C(host[:port]/path[:tag][@digest]), the name of the image in the store.
      - Docker Hub's shorthand works. V(busybox) is V(docker.io/library/busybox:latest) and
        V(me/app) is V(docker.io/me/app:latest). The first component is a registry when it holds a
        C(.) or a C(:) or is V(localhost). Without a tag or a digest, the tag is V(latest).
      - With a digest, the image is pulled by that digest.
    type: str
    required: true
  state:
    description:
      - V(present) makes sure the store has the image.
      - V(absent) removes the name from the store and collects the layers nothing else uses. An image
        that bundles still use (built by M(oci.runtime.bundle)) is not removed, and the task fails
        naming them, unless O(force).
    type: str
    choices: [present, absent]
    default: present
  pull:
    description:
      - V(missing) pulls only when the store has no image of that name.
      - V(always) asks the registry for the digest of O(name) every run (C(skopeo inspect)), and pulls
        only when it differs from the one of the last pull. An unchanged image is not changed.
      - Ignored with O(source), which is read every run.
    type: str
    choices: [missing, always]
    default: missing
  source:
    description:
      - Import the image from a local file or directory instead of pulling it, and store it as
        O(name). The source is read every run; the image is imported again when its manifest digest
        differs from the stored one.
    type: dict
    suboptions:
      type:
        description:
          - V(oci), an OCI image layout directory (C(oci-layout), C(index.json), C(blobs/)), read
            directly.
          - V(oci-archive), a tar file of such a layout, read through C(skopeo).
        type: str
        choices: [oci, oci-archive]
        required: true
      path:
        description: Absolute path of the layout directory or the archive.
        type: path
        required: true
      ref:
        description:
          - The tag in the layout (C(org.opencontainers.image.ref.name)). Default the only image of the
            layout, or the one tagged V(latest).
        type: str
  tls_verify:
    description:
      - Require HTTPS and a valid certificate from the registry. V(false) for a registry served over
        plain HTTP or with a self-signed certificate.
    type: bool
    default: true
  auth_file:
    description:
      - A C(containers-auth.json) file with the registry's credentials (as C(podman login) or
        C(skopeo login) write it).
    type: path
  username:
    description:
      - User name for the registry, with O(password). They are passed to C(skopeo) in a private
        temporary auth file, never on its command line.
    type: str
  password:
    description:
      - Password for the registry, with O(username).
    type: str
  force:
    description:
      - With O(state=absent), remove the image even though bundles still use it. Its layers then stay
        in the store until the last of those bundles is removed.
    type: bool
    default: false
requirements:
  - C(skopeo) on the managed host to pull images or read an C(oci-archive) (the role
    oci.runtime.runtime installs it).
  - Root on the managed host (layers keep their owners, and overlayfs whiteouts are device nodes).
notes:
  - Only the image for the managed host's platform is pulled from a multi-platform image.
  - Layers may be uncompressed or gzip; zstd needs Python 3.14 on the managed host.
  - O(runtime), O(runtime_root) and O(state_dir) are not used by this module.
seealso:
  - module: oci.runtime.image_info
  - module: oci.runtime.bundle
  - name: skopeo
    description: The tool that talks to registries.
    link: https://github.com/containers/skopeo
"""

EXAMPLES = r"""
- name: Pull busybox from Docker Hub (docker.io/library/busybox:latest)
  oci.runtime.image:
    name: busybox

- name: Follow a tag; pull when the registry's digest changes
  oci.runtime.image:
    name: registry.example.com:5000/team/app:1.4
    pull: always
    auth_file: /etc/containers/auth.json

- name: A local registry without TLS, with a password
  oci.runtime.image:
    name: 127.0.0.1:5000/app:1.4
    tls_verify: false
    username: deploy
    password: "{{ registry_password }}"

- name: Import an image built elsewhere
  oci.runtime.image:
    name: localhost/app:build-17
    source:
      type: oci-archive
      path: /srv/artifacts/app.tar

- name: Remove it, and the layers nothing else uses
  oci.runtime.image:
    name: localhost/app:build-17
    state: absent
"""

RETURN = r"""
image:
  description:
    - The image in the store after the task (in check mode, what is known before pulling; empty for
      V(absent)).
  returned: always
  type: dict
  contains:
    name:
      description: The canonical reference.
      type: str
      sample: docker.io/library/busybox:latest
    digest:
      description: Digest of the image manifest in the store (for this platform).
      type: str
      sample: "sha256:5ff3e0c3c4f8d9a8d7d33ca0c2c1c1c0a4f85b4a59cbbf1c6a0e7b6f94ed8c42"
    remote_digest:
      description:
        - The digest the registry served for O(name) at the last pull (the index's, for a
          multi-platform image); null for an imported image.
      type: str
    id:
      description: Digest of the image config.
      type: str
    size:
      description: Bytes of the (compressed) layers and the config, as the registry stores them.
      type: int
      sample: 2156789
    layers:
      description: Digests of the layers, bottom first.
      type: list
      elements: str
    created:
      description: The image config's C(created) time.
      type: str
      sample: "2024-09-26T21:31:42Z"
    architecture:
      description: The image config's C(architecture).
      type: str
      sample: amd64
    os:
      description: The image config's C(os).
      type: str
      sample: linux
    config:
      description:
        - The image config's C(config) (C(Entrypoint), C(Cmd), C(Env), C(WorkingDir), C(User),
          C(Labels), ...).
      type: dict
    source:
      description: Where it came from (C(docker://...), C(oci:PATH), C(oci-archive:PATH)).
      type: str
actions:
  description: What the task did (or would do in check mode), in order.
  returned: always
  type: list
  elements: str
  sample: ["pull docker.io/library/busybox:latest (sha256:5ff3...)", "unpack 1 of 1 layers"]
"""

from ansible_collections.oci.runtime.plugins.module_utils._module.common import run_module
from ansible_collections.oci.runtime.plugins.module_utils._module.image import (
    IMAGE_OPTIONS,
    IMAGE_RULES,
    ImageConverger,
)


def main():
    run_module(ImageConverger, IMAGE_OPTIONS, **IMAGE_RULES)


if __name__ == "__main__":
    main()
