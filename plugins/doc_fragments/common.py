# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
options:
  state_dir:
    description:
      - Directory where the collection keeps its records of containers and processes
        (C(state.json), C(process.json), pid, exit status, fifos, logs).
      - All tasks that manage the same containers must use the same O(state_dir). Set it once for a
        play with C(module_defaults) and the action group C(group/oci.runtime.oci).
    type: path
    default: /run/oci-runtime
  runtime:
    description:
      - The OCI runtime binary, as a name looked up on E(PATH) or as an absolute path.
      - Default V(runc) for a new container. An existing container is always driven by the runtime
        it was created with; with M(oci.runtime.container), a different value recreates it.
      - V(runc) is tested; V(crun) speaks the same command line and is supported where it runs.
    type: str
  runtime_root:
    description:
      - The runtime's own state directory (its C(--root) option). Unset, the runtime's default is
        used (C(/run/runc) for runc as root).
    type: path
  image_store:
    description:
      - The image store of M(oci.runtime.image) (images by name, every layer unpacked once), which
        M(oci.runtime.bundle) builds root filesystems from. Set it once for a play with
        C(module_defaults) and the action group C(group/oci.runtime.oci).
      - Modules that use no image accept it and ignore it.
    type: path
    default: /var/lib/oci-runtime/images
    version_added: 0.3.0
requirements:
  - An OCI runtime (runc or crun) on the managed host.
  - Python 3.8 or newer on the managed host (standard library only).
"""

    ATTRIBUTES = r"""
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
  action_group:
    description: Use C(group/oci.runtime.oci) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - oci.runtime.oci
  platform:
    description: Target OS/families that can be operated against.
    support: N/A
    platforms: posix
"""
