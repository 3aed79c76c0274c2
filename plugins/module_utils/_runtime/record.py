# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A container's record, ``<state_dir>/<id>/state.json``: what the container was created from and
with (bundle, runtime, its root and global arguments, stdio paths, no_pivot_root), its labels, the
digest of its config and when it was created.

``ContainerRecord`` is the one place that knows the file's keys, their types and defaults, and the
labels' two forms (a dict here, ``key=value`` strings in the file). Keys it does not know are kept
as they are.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from . import layout as L
from .errors import InvalidIdError, StateError
from .oci import DEFAULT_RUNTIME, OciRuntime

if TYPE_CHECKING:
    from typing import Any, Dict, Iterable, List, Mapping, Optional

# state.json's keys the record reads: (key, type, required). Anything else is kept as it is.
_KEYS = (
    ("bundle", str, True),
    ("labels", list, False),
    ("stdin", str, False),
    ("stdout", str, False),
    ("stderr", str, False),
    ("runtime", str, False),
    ("runtimeRoot", str, False),
    ("runtimeArgs", list, False),
    ("noPivotRoot", bool, False),
    ("configDigest", str, False),
    ("created", str, False),
    ("adopted", str, False),
    ("shim", str, False),
)
_WRITTEN = {key for key, dummy_type, dummy_required in _KEYS} | {"schemaVersion"}


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def check_labels(labels: Optional[Mapping[Any, Any]]) -> Dict[str, str]:
    """A task's labels as a dict of strings; InvalidIdError for a key that is empty or holds '='
    (it could not be told apart in state.json's ``key=value`` form) or a label without a value."""
    checked = {}
    for key, value in (labels or {}).items():
        if key is None or not str(key) or "=" in str(key):
            raise InvalidIdError("label key %r is not valid: it must be non-empty and hold no '='"
                                 % (key,))
        if value is None:
            raise InvalidIdError("label %r has no value" % (key,))
        checked[str(key)] = str(value)
    return checked


def record_problem(data: object) -> str:
    """What is wrong with a parsed state.json, or '' when it is a container record."""
    if not isinstance(data, dict):
        return "it holds a JSON %s, not an object" % type(data).__name__
    for key, kind, required in _KEYS:
        value = data.get(key)
        if value is None:
            if required:
                return "%r is missing" % key
            continue
        if not isinstance(value, kind):
            return "%r is a %s, not a %s" % (key, type(value).__name__, kind.__name__)
    for key in ("labels", "runtimeArgs"):
        if not all(isinstance(item, str) for item in data.get(key) or []):
            return "%r must hold only strings" % key
    return ""


class ContainerRecord(object):
    """One container's state.json, as attributes named like the modules' options."""

    def __init__(self, bundle: str, labels: Optional[Mapping[str, str]] = None,
                 stdio: Optional[Mapping[str, Optional[str]]] = None, runtime: str = DEFAULT_RUNTIME,
                 runtime_root: Optional[str] = None, runtime_args: Iterable[str] = (),
                 no_pivot_root: bool = False, config_digest: str = "",
                 created: Optional[str] = None, adopted: Optional[str] = None, shim: str = "",
                 extra: Optional[Mapping[str, Any]] = None) -> None:
        stdio = stdio or {}
        self.bundle = bundle
        self.labels = dict(labels or {})
        self.stdin = stdio.get("stdin") or ""   # "": the default (no input, logs in the init dir)
        self.stdout = stdio.get("stdout") or ""
        self.stderr = stdio.get("stderr") or ""
        self.runtime = runtime or DEFAULT_RUNTIME
        self.runtime_root = runtime_root or None  # None: the runtime's default root
        self.runtime_args = list(runtime_args)
        self.no_pivot_root = bool(no_pivot_root)
        self.config_digest = config_digest
        self.created = created
        self.adopted = adopted  # set when the record was rebuilt from the runtime's state
        self.shim = shim        # "shim" once one of our shims runs it
        self.extra = dict(extra or {})

    @classmethod
    def for_runtime(cls, runtime: OciRuntime, bundle: str, **fields: Any) -> ContainerRecord:
        """A new record of a container driven by ``runtime``."""
        return cls(bundle, runtime=runtime.name, runtime_root=runtime.root,
                   runtime_args=runtime.runtime_args, **fields)

    # --- state.json ----------------------------------------------------------------------------

    @classmethod
    def from_json(cls, data: Any, path: str) -> ContainerRecord:
        """The record in a parsed state.json; StateError naming ``path`` when it is not one."""
        problem = record_problem(data)
        if problem:
            raise StateError("%s is not a container record: %s" % (path, problem), path=path)
        labels = {}
        for item in data.get("labels") or []:
            key, dummy_sep, value = item.partition("=")
            labels[key] = value
        return cls(
            data["bundle"], labels=labels,
            stdio={key: data.get(key) for key in ("stdin", "stdout", "stderr")},
            runtime=data.get("runtime") or DEFAULT_RUNTIME, runtime_root=data.get("runtimeRoot"),
            runtime_args=data.get("runtimeArgs") or [], no_pivot_root=bool(data.get("noPivotRoot")),
            config_digest=data.get("configDigest") or "", created=data.get("created"),
            adopted=data.get("adopted"), shim=data.get("shim") or "",
            extra={k: v for k, v in data.items() if k not in _WRITTEN})

    def to_json(self) -> Dict[str, Any]:
        data = dict(self.extra)
        data.update({
            "schemaVersion": L.SCHEMA_VERSION,
            "bundle": self.bundle,
            "labels": self.label_list(),
            "stdin": self.stdin,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "runtime": self.runtime,
            "runtimeRoot": self.runtime_root or "",
            "runtimeArgs": list(self.runtime_args),
            "shim": self.shim,
            "noPivotRoot": self.no_pivot_root,
            "configDigest": self.config_digest,
            "created": self.created,
        })
        if self.adopted:
            data["adopted"] = self.adopted
        return data

    @classmethod
    def read(cls, path: str) -> Optional[ContainerRecord]:
        """The record at ``path``; None when there is none; StateError when it is not a record."""
        data = L.read_json(path)
        return None if data is None else cls.from_json(data, path)

    def write(self, path: str) -> None:
        L.atomic_write_json(path, self.to_json())

    # --- derived -------------------------------------------------------------------------------

    def label_list(self) -> List[str]:
        """The labels as state.json holds them: ``key=value``, sorted."""
        return ["%s=%s" % (key, value) for key, value in sorted(self.labels.items())]

    def oci_runtime(self) -> OciRuntime:
        """The runtime the container was created with (RuntimeNotFoundError if it is gone)."""
        return OciRuntime(self.runtime, root=self.runtime_root, runtime_args=self.runtime_args)
