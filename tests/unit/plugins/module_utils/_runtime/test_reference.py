# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""reference.py: image references, Docker Hub's shorthand, refusals."""

from __future__ import annotations

import pytest

from ansible_collections.oci.runtime.plugins.module_utils._runtime import reference as R
from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import InvalidValueError

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize("text, canonical, transport", [
    ("busybox", "docker.io/library/busybox:latest", "docker://docker.io/library/busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36", "docker://docker.io/library/busybox:1.36"),
    ("me/app", "docker.io/me/app:latest", "docker://docker.io/me/app:latest"),
    ("docker.io/busybox", "docker.io/library/busybox:latest", None),
    ("index.docker.io/library/busybox", "docker.io/library/busybox:latest", None),
    ("localhost/app", "localhost/app:latest", None),
    ("localhost:5000/a/b/c:v1", "localhost:5000/a/b/c:v1", "docker://localhost:5000/a/b/c:v1"),
    ("127.0.0.1:5000/test/app:v1.2-rc_3", "127.0.0.1:5000/test/app:v1.2-rc_3", None),
    ("quay.io/org/app@" + DIGEST, "quay.io/org/app@" + DIGEST, "docker://quay.io/org/app@" + DIGEST),
    ("quay.io/org/app:1@" + DIGEST, "quay.io/org/app:1@" + DIGEST, "docker://quay.io/org/app@" + DIGEST),
    ("registry.example.com/my_app__x/a-b.c", "registry.example.com/my_app__x/a-b.c:latest", None),
])
def test_parse(text, canonical, transport):
    ref = R.parse(text)
    assert str(ref) == canonical
    assert str(R.parse(canonical)) == canonical  # canonical is a fixed point
    if transport:
        assert ref.transport() == transport


def test_parts():
    ref = R.parse("localhost:5000/team/app:1.4")
    assert (ref.registry, ref.path, ref.tag, ref.digest) == ("localhost:5000", "team/app", "1.4", None)
    assert ref.repository == "localhost:5000/team/app"
    assert R.parse("busybox") == R.parse("docker.io/library/busybox:latest")


@pytest.mark.parametrize("text, why", [
    ("", "non-empty"),
    ("/srv/images/busybox", "is a path"),
    ("Busybox", "path component"),
    ("app:", "not a valid tag"),
    ("app:.x", "not a valid tag"),
    ("app@sha256:abc", "not a digest"),
    ("app@md5:" + "a" * 32, "not a digest"),
    ("host:99999/app", "registry host"),
    ("host:x/app", "registry host"),
    ("bad_host.com/app", "registry host"),
    ("a//b", "path component"),
    ("a/../b", "path component"),
    ("app b", "white space"),
    ("r.io/" + "a" * 300, "longer than"),
])
def test_refused(text, why):
    with pytest.raises(InvalidValueError) as err:
        R.parse(text)
    assert why in err.value.msg


def test_looks_like_path():
    assert R.looks_like_path("/srv/layout")
    assert not R.looks_like_path("busybox")
