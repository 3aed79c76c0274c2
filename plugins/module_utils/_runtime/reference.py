# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Image references: ``host[:port]/path[:tag][@digest]``, with Docker Hub's shorthand.

``busybox`` is ``docker.io/library/busybox:latest``; ``me/app`` is ``docker.io/me/app:latest``;
the first component is a registry host when it holds a ``.`` or a ``:`` or is ``localhost``. A
reference without a tag or digest gets the tag ``latest``. The canonical form (``str()``) is the
key of an image in the store and what ``skopeo`` is given (after ``docker://``).
"""

from __future__ import annotations

import re

from .errors import InvalidValueError

DEFAULT_REGISTRY = "docker.io"
LEGACY_REGISTRIES = ("index.docker.io", "registry-1.docker.io")
DEFAULT_TAG = "latest"
MAX_NAME_LENGTH = 255

_COMPONENT_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_HOST_RE = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)"
                      r"(?:\.(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?))*$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$|^sha512:[0-9a-f]{128}$")


class Reference(object):
    """A parsed image reference (``registry``, ``path``, ``tag``, ``digest``)."""

    def __init__(self, registry: str, path: str, tag: str | None = None,
                 digest: str | None = None) -> None:
        self.registry = registry
        self.path = path
        self.tag = tag
        self.digest = digest

    @property
    def repository(self) -> str:
        return "%s/%s" % (self.registry, self.path)

    def __str__(self) -> str:
        text = self.repository
        if self.tag:
            text += ":" + self.tag
        if self.digest:
            text += "@" + self.digest
        return text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Reference) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def __repr__(self) -> str:
        return "Reference(%r)" % str(self)

    def transport(self) -> str:
        """What ``skopeo`` pulls: ``docker://`` plus the digest form when there is a digest (the
        registry client takes a tag or a digest, not both)."""
        if self.digest:
            return "docker://%s@%s" % (self.repository, self.digest)
        return "docker://%s:%s" % (self.repository, self.tag or DEFAULT_TAG)


def parse(text: object) -> Reference:
    """The Reference ``text`` names; InvalidValueError with the reason when it is not one."""
    if not isinstance(text, str) or not text:
        raise InvalidValueError("an image reference must be a non-empty string, got %r" % (text,))
    if text != text.strip() or any(c.isspace() for c in text):
        raise InvalidValueError("image reference %r holds white space" % text)
    if text.startswith("/"):
        raise InvalidValueError("image reference %r is a path, not a reference "
                                "(host[:port]/path[:tag][@digest])" % text)
    remainder, digest = text, None
    if "@" in text:
        remainder, digest = text.split("@", 1)
        if not _DIGEST_RE.match(digest):
            raise InvalidValueError("image reference %r: %r is not a digest (sha256:<64 lowercase "
                                    "hex> or sha512:<128>)" % (text, digest))
    tag = None
    last_slash = remainder.rfind("/")
    colon = remainder.rfind(":")
    if colon > last_slash:
        remainder, tag = remainder[:colon], remainder[colon + 1:]
        if not _TAG_RE.match(tag):
            raise InvalidValueError("image reference %r: %r is not a valid tag (letters, digits, "
                                    "'_', '.', '-', at most 128, not starting with '.' or '-')"
                                    % (text, tag))
    parts = remainder.split("/")
    first = parts[0]
    if len(parts) > 1 and ("." in first or ":" in first or first == "localhost"
                           or first != first.lower()):
        registry, path_parts = first, parts[1:]
        host, _sep, port = registry.partition(":")
        if not _HOST_RE.match(host) or (_sep and not (port.isdigit() and 0 < int(port) < 65536)):
            raise InvalidValueError("image reference %r: %r is not a registry host[:port]"
                                    % (text, registry))
        if registry in LEGACY_REGISTRIES:
            registry = DEFAULT_REGISTRY
    else:
        registry, path_parts = DEFAULT_REGISTRY, parts
    if registry == DEFAULT_REGISTRY and len(path_parts) == 1:
        path_parts = ["library"] + path_parts
    for component in path_parts:
        if not _COMPONENT_RE.match(component):
            raise InvalidValueError("image reference %r: path component %r is not valid (lowercase "
                                    "letters and digits, separated by '.', '_', '__' or '-')"
                                    % (text, component))
    path = "/".join(path_parts)
    if len(registry) + 1 + len(path) > MAX_NAME_LENGTH:
        raise InvalidValueError("image reference %r: the name is longer than %d characters"
                                % (text, MAX_NAME_LENGTH))
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return Reference(registry, path, tag, digest)


def looks_like_path(text: object) -> bool:
    """An absolute path names an OCI image layout directory, anything else a reference."""
    return isinstance(text, str) and text.startswith("/")
