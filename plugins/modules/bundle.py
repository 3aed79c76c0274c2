#!/usr/bin/python
# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: bundle
short_description: Build an OCI bundle from an image layout, a tar archive or a directory
version_added: 0.1.0
description:
  - Builds the OCI bundle that M(oci.runtime.container) runs, a directory with C(config.json) and the
    root filesystem C(rootfs/), from an OCI image layout (as written by C(skopeo copy ... oci:DIR:TAG),
    C(umoci) or C(docker save)), a tar archive, or a directory.
  - C(config.json) starts from what C(runc spec) writes, with C(process.terminal) set to V(false). From
    an image, the image config's C(Entrypoint) and C(Cmd), C(Env), C(WorkingDir) and C(User) come next;
    the options of the task override them, and O(spec) is merged last.
  - Idempotent by content. The root filesystem is rebuilt only when its source changes (the archive's
    SHA-256, the digest of the image manifest, or the listing of O(rootfs_dir)); C(config.json) is
    rewritten (atomically) only when its bytes would change. Unchanged inputs change nothing.
  - A new root filesystem is built completely next to the old one (C(rootfs.new-*)) and then swapped
    in with an atomic rename exchange, so a failed build (a refused archive member, a digest mismatch,
    a damaged layer) leaves the previous bundle as it was.
  - C(config.json) carries the annotation C(oci.runtime.bundle.rootfs-digest), the digest of the root
    filesystem's source. A new root filesystem therefore changes the config digest, and
    M(oci.runtime.container) recreates the container on its next run, as it does for a changed config.
  - Archive members and image layer entries are written one by one, never with C(extractall). Absolute
    names, C(..) components, hard links to paths outside the root filesystem, symbolic links whose
    target climbs above the root filesystem when resolved inside it, and device nodes (unless
    O(allow_devices)) are refused with a message naming the member. Nothing is ever written through a
    symbolic link; a parent directory that is a symbolic link inside the root filesystem is resolved
    inside it.
author:
  - oci.runtime developers (@oci-runtime)
extends_documentation_fragment:
  - oci.runtime.common.attributes
options:
  path:
    description:
      - Absolute path of the bundle directory. Created (mode 0700, parents as needed) if missing.
      - It holds C(config.json), C(rootfs/) and the metadata file C(.oci-runtime-bundle.json).
    type: path
    required: true
  state:
    description:
      - V(present) builds or updates the bundle.
      - V(absent) removes the bundle directory and everything in it. Only a directory that holds
        C(config.json) or C(.oci-runtime-bundle.json) is removed; a symbolic link, a file or any other
        directory is refused. Remove the containers that use it first.
    type: str
    choices: [present, absent]
    default: present
  rootfs_archive:
    description:
      - Absolute path of a tar archive (uncompressed, gzip, xz or bzip2, found from its content) holding
        the root filesystem at its top level.
      - Ownership (numeric ids), modes, mtimes and extended attributes are kept. Whiteout files are not
        interpreted.
      - Exactly one of O(rootfs_archive), O(rootfs_dir) and O(image) is required with O(state=present).
    type: path
  rootfs_dir:
    description:
      - Absolute path of a directory that is copied as the root filesystem, keeping ownership, modes,
        mtimes, symbolic links, hard links and extended attributes (sockets are skipped).
      - Whether it changed is decided from a digest over its listing (relative paths, types, modes,
        owners, sizes, mtimes, link targets), not over the contents of its files, so that an unchanged
        tree is not read in full on every run. An edit that keeps a file's size and mtime is not seen.
    type: path
  image:
    description:
      - An image of the image store (O(image_store)), by reference (such as V(busybox) or
        V(registry.example.com/app:1.4), as M(oci.runtime.image) names it), or the absolute path of
        an OCI image layout directory (C(oci-layout), C(index.json), C(blobs/)).
      - From the store, the root filesystem is not a copy. C(rootfs/) is an overlayfs mount of the
        image's unpacked layers (read-only, shared by every bundle of the image) with a writable
        layer of the bundle's own (C(.oci-runtime-overlay/upper)), so the container's writes stay in
        its bundle. What to mount is recorded in C(.oci-runtime-overlay.json);
        M(oci.runtime.container) mounts it again before it creates or restores the container when
        it is missing (after a reboot). The image must be in the store (pull it first); a new image
        digest under the same name gives the bundle a new, empty writable layer. Removing the bundle
        unmounts it and removes its writable layer only.
      - From a layout directory, the layers are copied into C(rootfs/).
      - Every blob is verified against its digest before it is used. Layers may be uncompressed or gzip
        (zstd needs Python 3.14 on the managed host); they are applied in order, with whiteouts and
        opaque directories as the OCI image specification defines them.
      - A multi-platform image is narrowed to the manifest for the managed host's platform.
    type: str
  image_ref:
    description:
      - The tag in the image layout (the annotation C(org.opencontainers.image.ref.name) in
        C(index.json), or in an index nested in it), such as V(latest) or V(1.36).
      - Default is the only image in the layout, or else the one tagged V(latest).
    type: str
  allow_devices:
    description:
      - Write the device nodes found in the archive, image or directory. Otherwise they are refused.
    type: bool
    default: false
  args:
    description:
      - The container's command line (C(process.args)).
      - From an image, it replaces the whole command line, the image's C(Entrypoint) and C(Cmd) both;
        repeat the entrypoint to keep it. Default is the image's C(Entrypoint) followed by its C(Cmd),
        or V([sh]) as C(runc spec) has it.
    type: list
    elements: str
  env:
    description:
      - Environment variables, added to (or replacing) the defaults C(PATH) and C(TERM) of
        C(runc spec) and the image's C(Env). A null value removes the variable.
    type: dict
  cwd:
    description:
      - Working directory in the container, an absolute path. Default the image's C(WorkingDir), else
        V(/).
    type: str
  hostname:
    description:
      - Host name of the container. Default V(runc), as C(runc spec) has it (none without a C(uts)
        namespace).
    type: str
  user:
    description:
      - The user the process runs as, V(uid) or V(uid:gid); names (V(nobody), V(app:app)) are looked
        up in the root filesystem's C(/etc/passwd) and C(/etc/group).
      - Without a group, the user's primary group from C(/etc/passwd) is used, or V(0).
      - Default the image's C(User) (resolved the same way), else V(0:0).
    type: str
  readonly_rootfs:
    description:
      - Mount the root filesystem read-only (C(root.readonly)), as C(runc spec) does by default.
    type: bool
    default: true
  mounts:
    description:
      - OCI mounts (C(destination), C(type), C(source), C(options)). A mount whose C(destination) is
        that of a default mount of C(runc spec) (such as V(/dev/shm)) replaces it; the others are
        added after the defaults.
    type: list
    elements: dict
  namespaces:
    description:
      - The Linux namespaces of the container, replacing the default V(pid), V(network), V(ipc),
        V(uts) and V(mount). Each item is a type name (V(pid), V(network) or V(net), V(mount), V(ipc),
        V(uts), V(user), V(cgroup), V(time)) or a dictionary with C(type) and C(path) to join an
        existing namespace.
      - Leaving out V(network) shares the host's network.
    type: list
    elements: raw
  capabilities:
    description:
      - Linux capabilities of the process, such as V(CAP_NET_ADMIN) or V(NET_ADMIN); V(ALL) for all.
      - They replace the default set of C(runc spec) (C(CAP_AUDIT_WRITE), C(CAP_KILL),
        C(CAP_NET_BIND_SERVICE)) in the bounding, effective, permitted and ambient sets, as C(runc
        spec) fills them, so that a non-root O(user) gets them too.
    type: list
    elements: str
  resources:
    description:
      - Initial cgroup limits (C(linux.resources)), with the names and value forms of
        M(oci.runtime.resource_update) (V(memory), V(memory_swap), V(memory_reservation),
        V(cpu_shares), V(cpu_quota), V(cpu_period), V(cpuset_cpus), V(cpuset_mems), V(pids_limit),
        V(blkio_weight)); sizes such as V(256m).
    type: dict
  annotations:
    description:
      - Annotations of the bundle (C(annotations) in C(config.json)).
      - The key C(oci.runtime.bundle.rootfs-digest) is set by the module.
    type: dict
  spec:
    description:
      - Any other part of the OCI runtime configuration, deep-merged into C(config.json) last.
        Dictionaries are merged key by key, a null value removes the key, lists and other values
        replace what is there.
      - The root filesystem is always built in C(rootfs/); pointing C(root.path) elsewhere leaves it
        unused.
    type: dict
  networks:
    description:
      - CNI networks the container joins (made with M(oci.runtime.network)), in order; its
        interfaces are C(eth0), C(eth1)... Each item is a network name or a dictionary with
        C(name) (required), C(ip) (a static address inside the network's subnet; default the next
        free one), C(aliases) (more host names of the container in its C(/etc/hosts)) and C(ports)
        (published ports, a list of dictionaries with C(container_port) (required), C(host_port)
        (default the container port), C(protocol) (V(tcp) or V(udp), default V(tcp)) and
        C(host_ip) (default every address of the host; V(127.0.0.1) keeps the port local)).
      - The container then gets a network namespace of its own, named after the bundle path
        (C(/run/netns/ocirt-<hash>)) and made by M(oci.runtime.container) when it creates the
        container; the list goes into the annotation C(oci.runtime.networks), so a change recreates
        the container. One container at a time can run from a bundle with networks.
      - C(/etc/hosts) (the container, its aliases and the containers already on its networks) and
        C(/etc/resolv.conf) are bind-mounted read-only from C(.oci-runtime-network/) in the bundle,
        unless O(mounts) mounts something there.
      - Requires the V(network) namespace without a C(path) in O(namespaces).
    type: list
    elements: dict
    version_added: 0.3.0
  state_dir:
    description:
      - Not used by this module. Accepted so that C(module_defaults) for the action group
        C(group/oci.runtime.oci) can set it for every module of the collection.
    type: path
  runtime:
    description:
      - Not used by this module (accepted for C(module_defaults), like O(state_dir)).
    type: str
  runtime_root:
    description:
      - Not used by this module (accepted for C(module_defaults), like O(state_dir)).
    type: path
  image_store:
    description:
      - The image store that O(image) names an image of (see M(oci.runtime.image)).
    type: path
    default: /var/lib/oci-runtime/images
    version_added: 0.3.0
requirements:
  - Python 3.8 or newer on the managed host (standard library only).
  - Root on the managed host to keep the ownership of the files and to write device nodes.
notes:
  - The module does not look at the files in C(rootfs/) on later runs, only at what they were built
    from; files changed inside C(rootfs/) stay changed until the source changes.
  - The previous root filesystem is removed once the new one is in place. A container still running
    from it keeps the files it has open; run M(oci.runtime.container) next to recreate it on the new
    one.
  - Volumes, exposed ports, labels and the stop signal of an image config are not used.
  - Check mode reads the sources (and verifies the image's manifest and config) but writes nothing; an
    archive member that the build would refuse is found only when the bundle is built.
seealso:
  - module: oci.runtime.container
  - name: OCI image layout specification
    description: The directory format of O(image).
    link: https://github.com/opencontainers/image-spec/blob/main/image-layout.md
  - name: OCI runtime configuration
    description: What C(config.json) holds, and what O(spec) can set.
    link: https://github.com/opencontainers/runtime-spec/blob/main/config.md
"""

EXAMPLES = r"""
# From an OCI image layout to a running container, in two tasks. The layout can come from
# `skopeo copy docker://docker.io/library/busybox:1.36 oci:/srv/images/busybox:1.36`.
- name: Build the bundle from the image
  oci.runtime.bundle:
    path: /srv/bundles/web
    image: /srv/images/busybox
    image_ref: "1.36"
    args: [httpd, -f, -p, "8080"]
    env:
      GREETING: hello

- name: Run it
  oci.runtime.container:
    name: web
    bundle: /srv/bundles/web

- name: Build a bundle from a tarball, with a writable root and limits
  oci.runtime.bundle:
    path: /srv/bundles/job
    rootfs_archive: /srv/rootfs/alpine.tar.gz
    args: [sh, -c, "echo started; sleep infinity"]
    readonly_rootfs: false
    user: "1000:1000"
    hostname: job
    resources:
      memory: 256m
      pids_limit: 64
    mounts:
      - destination: /data
        type: bind
        source: /srv/data/job
        options: [rbind, rw]
    spec:
      process:
        noNewPrivileges: false

- name: Remove a bundle
  oci.runtime.bundle:
    path: /srv/bundles/job
    state: absent
"""

RETURN = r"""
path:
  description: The bundle directory.
  returned: always
  type: str
  sample: /srv/bundles/web
config_digest:
  description:
    - SHA-256 of C(config.json) (as predicted in check mode), in the form that
      M(oci.runtime.container) reports as RV(oci.runtime.container#module:container.config_digest).
  returned: when O(state=present)
  type: str
  sample: "sha256:8a266d93a7d16fce82f587d41e31013244b46f31b5895ca03bc173b31602bafd"
rootfs_digest:
  description:
    - Digest of the root filesystem's source. The archive's SHA-256 for O(rootfs_archive), the digest
      of the image manifest for this platform for O(image), a digest over the tree's listing for
      O(rootfs_dir).
  returned: when O(state=present)
  type: str
  sample: "sha256:1c35c441208254cb7c3844ba95a96485388cef9ccc0646d562c7fc026e04c807"
image_digest:
  description:
    - Digest of what O(image_ref) names in the layout (the manifest, or the index of a multi-platform
      image).
  returned: when O(state=present) and O(image) is given
  type: str
  sample: "sha256:5ff3e0c3c4f8d9a8d7d33ca0c2c1c1c0a4f85b4a59cbbf1c6a0e7b6f94ed8c42"
actions:
  description: What the task did (or would do in check mode), in order.
  returned: always
  type: list
  elements: str
  sample: ["create bundle directory", "build rootfs: from image sha256:1c35...", "write config.json",
           "write metadata"]
"""

from ansible_collections.oci.runtime.plugins.module_utils._module.bundle import (
    BUNDLE_MODULE_OPTIONS,
    BUNDLE_MODULE_RULES,
    BundleConverger,
)
from ansible_collections.oci.runtime.plugins.module_utils._module.common import run_module


def main():
    run_module(BundleConverger, BUNDLE_MODULE_OPTIONS, common_options=False, **BUNDLE_MODULE_RULES)


if __name__ == "__main__":
    main()
