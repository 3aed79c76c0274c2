# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make ``ansible_collections.oci.runtime`` importable when pytest runs from a plain checkout.

Under ``ansible-test units`` (or with a collections root already on ``sys.path``) the import works
as it is and nothing is changed. Otherwise a temporary collections root holding the symlink
``ansible_collections/oci/runtime -> <this checkout>`` is put first on ``sys.path``.
"""

from __future__ import annotations

import atexit
import importlib
import os
import shutil
import sys
import tempfile

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_PROBE = "ansible_collections.oci.runtime.plugins.module_utils._runtime.layout"


def _ensure_collection_importable():
    try:
        importlib.import_module(_PROBE)
        return
    except ImportError:
        pass
    parts = _REPO.split(os.sep)
    if parts[-3:-1] == ["ansible_collections", "oci"] and parts[-1] == "runtime":
        root = os.sep.join(parts[:-3])
    else:
        root = tempfile.mkdtemp(prefix="oci-runtime-collections-")
        atexit.register(shutil.rmtree, root, True)
        os.makedirs(os.path.join(root, "ansible_collections", "oci"))
        os.symlink(_REPO, os.path.join(root, "ansible_collections", "oci", "runtime"))
    sys.path.insert(0, root)
    for name in [n for n in sys.modules if n == "ansible_collections" or n.startswith("ansible_collections.")]:
        del sys.modules[name]
    importlib.invalidate_caches()
    importlib.import_module(_PROBE)


_ensure_collection_importable()
