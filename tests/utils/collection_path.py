# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make ``ansible_collections.oci.runtime`` importable from a given checkout (the test suites' conftest.py).

``make_importable(repo)`` puts a collections root on ``sys.path``: the one ``repo`` already sits in when
it is a collection copy (``<root>/ansible_collections/oci/runtime``, as ``scripts/run-tests.sh`` makes
and ``ansible-test`` needs), else a temporary root holding the symlink
``ansible_collections/oci/runtime -> <repo>`` (a plain checkout), removed at exit.

``reuse=True`` (the unit tests) keeps a collection that already imports, as under ``ansible-test units``,
which sets up its own. Otherwise (the functional tests) ``ansible_collections`` modules loaded from
elsewhere (an installed collection, pytest-ansible's finder) are dropped, and the package must then
resolve to ``repo`` itself.

Standard library only.
"""

from __future__ import annotations

import atexit
import importlib
import os
import shutil
import sys
import tempfile

PACKAGE = "ansible_collections.oci.runtime"
PROBE = PACKAGE + ".plugins.module_utils._runtime.layout"


def collections_root(repo):
    """The collections root ``repo`` sits in, or a temporary one that links to it."""
    parts = repo.split(os.sep)
    if parts[-3:] == ["ansible_collections", "oci", "runtime"]:
        return os.sep.join(parts[:-3])
    root = tempfile.mkdtemp(prefix="oci-runtime-collections-")
    atexit.register(shutil.rmtree, root, True)
    os.makedirs(os.path.join(root, "ansible_collections", "oci"))
    os.symlink(repo, os.path.join(root, "ansible_collections", "oci", "runtime"))
    return root


def make_importable(repo, reuse=False):
    """Make the collection importable from ``repo``; returns the collections root put on ``sys.path``
    (None when ``reuse`` kept one that was already importable)."""
    if reuse:
        try:
            importlib.import_module(PROBE)
            return None
        except ImportError:
            pass
    root = collections_root(repo)
    if root not in sys.path:
        sys.path.insert(0, root)
    for name in [n for n in sys.modules if n == "ansible_collections" or n.startswith("ansible_collections.")]:
        del sys.modules[name]
    importlib.invalidate_caches()
    where = os.path.realpath(importlib.import_module(PROBE).__file__)
    if not reuse and not where.startswith(os.path.realpath(repo) + os.sep):
        raise RuntimeError("%s resolves to %s, not to the checkout %s" % (PACKAGE, where, repo))
    return root
