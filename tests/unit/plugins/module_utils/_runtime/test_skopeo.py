# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""skopeo.py: how access options become skopeo arguments (credentials only in a 0600 auth file) and
what skopeo's errors are said to mean."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from ansible_collections.oci.runtime.plugins.module_utils._runtime import reference as R
from ansible_collections.oci.runtime.plugins.module_utils._runtime import skopeo as S


def test_credentials_go_to_a_private_auth_file(tmp_path):
    access = S.Access(tls_verify=False, username="alice", password="s3cret")
    argv = access.args("127.0.0.1:5000", str(tmp_path), prefix="src-")
    assert argv[0] == "--src-tls-verify=false"
    assert argv[1] == "--src-authfile=%s" % (tmp_path / "auth.json")
    assert not any("s3cret" in a for a in argv)
    auth = json.loads((tmp_path / "auth.json").read_text())
    assert base64.b64decode(auth["auths"]["127.0.0.1:5000"]["auth"]) == b"alice:s3cret"
    assert stat.S_IMODE(os.stat(str(tmp_path / "auth.json")).st_mode) == 0o600


def test_access_options(tmp_path):
    assert S.Access().args("r.io", str(tmp_path)) == ["--tls-verify=true"]
    auth_file = tmp_path / "auth.json"
    auth_file.write_text("{}")
    assert S.Access(auth_file=str(auth_file)).args("r.io", str(tmp_path))[1] == \
        "--authfile=%s" % auth_file
    with pytest.raises(S.RegistryError):
        S.Access(username="alice")
    with pytest.raises(S.RegistryError):
        S.Access(auth_file=str(auth_file), username="a", password="b")
    with pytest.raises(S.RegistryError):
        S.Access(auth_file=str(tmp_path / "missing.json"))


@pytest.mark.parametrize("stderr, meaning", [
    ('time="..." level=fatal msg="Error reading manifest v1 in r/a: manifest unknown: manifest unknown"',
     "has no such image"),
    ("reading manifest latest in r/a: name unknown: repository name not known to registry", "has no such image"),
    ("unable to retrieve auth token: invalid username/password: unauthorized", "refused the credentials"),
    ("pinging container registry 127.0.0.1:1: Get ...: dial tcp 127.0.0.1:1: connect: connection refused",
     "could not be reached or went away"),
    ("writing blob: happened during read: unexpected EOF", "could not be reached or went away"),
    ("http: server gave HTTP response to HTTPS client", "TLS failed"),
    ("something else", "something else"),
    ("", "without a message"),
])
def test_explain(stderr, meaning):
    assert meaning in S.explain(stderr)


def test_remote_digest_of_a_digest_reference_asks_nobody(tmp_path):
    digest = "sha256:" + "ab" * 32
    assert S.remote_digest(R.parse("r.io/a@" + digest), S.Access(), str(tmp_path)) == digest
