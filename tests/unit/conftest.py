# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make ``ansible_collections.oci.runtime`` importable when pytest runs from a plain checkout.

Under ``ansible-test units`` (or with a collections root already on ``sys.path``) the import works
as it is and nothing is changed; otherwise tests/utils/collection_path.py puts a collections root
for this checkout first on ``sys.path``.
"""

from __future__ import annotations

import importlib.util
import os

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _collection_path():
    spec = importlib.util.spec_from_file_location(
        "collection_path", os.path.join(_REPO, "tests", "utils", "collection_path.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_collection_path().make_importable(_REPO, reuse=True)
