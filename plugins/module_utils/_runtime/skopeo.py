# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The only place that runs ``skopeo``: the digest a registry has for a reference, and copying an
image from a registry (or an ``oci-archive``) into a ``dir:`` directory that the store imports.

``dir:`` keeps the manifest exactly as the source serves it (a Docker schema 2 manifest is not
converted to OCI), so the digest in the store is the registry's. Credentials never go on the
command line: ``username``/``password`` are written to an auth file (0600) in the pull's private
temporary directory, which is removed with it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess

from typing import TYPE_CHECKING

from .errors import RuntimeCoreError

if TYPE_CHECKING:
    from .reference import Reference

SKOPEO = "skopeo"
DEFAULT_TIMEOUT = 3600.0


class RegistryError(RuntimeCoreError):
    """skopeo is missing, or the registry refused or failed a request."""


class Access(object):
    """How to reach a registry: TLS verification and credentials."""

    def __init__(self, tls_verify: bool = True, auth_file: str | None = None,
                 username: str | None = None, password: str | None = None) -> None:
        if (username is None) != (password is None):
            raise RegistryError("username and password go together")
        if auth_file is not None and username is not None:
            raise RegistryError("give auth_file or username/password, not both")
        if auth_file is not None and not os.path.isfile(auth_file):
            raise RegistryError("auth_file %s does not exist" % auth_file, path=auth_file)
        self.tls_verify = bool(tls_verify)
        self.auth_file = auth_file
        self.username = username
        self.password = password

    def args(self, registry: str | None, workdir: str, prefix: str = "") -> list[str]:
        """The skopeo options (``prefix`` is ``src-`` for copy)."""
        argv = ["--%stls-verify=%s" % (prefix, "true" if self.tls_verify else "false")]
        auth_file = self.auth_file
        if self.username is not None:
            auth_file = os.path.join(workdir, "auth.json")
            token = base64.b64encode(("%s:%s" % (self.username, self.password)).encode("utf-8"))
            fd = os.open(auth_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump({"auths": {registry: {"auth": token.decode("ascii")}}}, handle)
        if auth_file is not None:
            argv.append("--%sauthfile=%s" % (prefix, auth_file))
        return argv


def find_skopeo() -> str:
    path = shutil.which(SKOPEO)
    if path is None:
        raise RegistryError("skopeo was not found on PATH: install it (Debian/Ubuntu: apt-get install "
                            "skopeo; the role oci.runtime.runtime installs it) to pull images")
    return path


def _run(argv: list[str], what: str, timeout: float) -> bytes:
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise RegistryError("%s: skopeo did not finish within %ss" % (what, timeout), argv=argv)
    except OSError as exc:
        raise RegistryError("%s: cannot run skopeo: %s" % (what, exc.strerror), argv=argv)
    if proc.returncode != 0:
        stderr = proc.stderr.decode("utf-8", "replace").strip()
        raise RegistryError("%s: %s" % (what, explain(stderr)), argv=_public(argv),
                            rc=proc.returncode, stderr=stderr)
    return proc.stdout


def _public(argv: list[str]) -> list[str]:
    return [a for a in argv if not a.startswith(("--creds", "--src-creds"))]


def explain(stderr: str) -> str:
    """skopeo's last error line, with what it usually means in front of it."""
    line = stderr.strip().splitlines()[-1] if stderr.strip() else "skopeo failed without a message"
    line = line.replace('time="', "").strip()
    low = stderr.lower()
    if "manifest unknown" in low or "name unknown" in low \
            or ("not found" in low and "manifest" in low):
        return "the registry has no such image (%s)" % line
    if "unauthorized" in low or "authentication required" in low or "denied" in low:
        return "the registry refused the credentials (%s)" % line
    if "connection refused" in low or "no such host" in low or "i/o timeout" in low \
            or "connection reset" in low or "eof" in low:
        return "the registry could not be reached or went away (%s)" % line
    if "http response to https client" in low or "x509" in low or "certificate" in low:
        return "TLS failed; set tls_verify: false for a registry without valid TLS (%s)" % line
    return line


def remote_digest(reference: Reference, access: Access, workdir: str,
                  timeout: float = DEFAULT_TIMEOUT) -> str:
    """The digest of the manifest (or index) the registry serves for ``reference``."""
    if reference.digest:
        return reference.digest
    argv = [find_skopeo(), "inspect", "--raw"] + access.args(reference.registry, workdir) \
        + [reference.transport()]
    raw = _run(argv, "cannot inspect %s" % reference, timeout)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def copy_to_dir(source: str, destination: str, workdir: str, access: Access | None = None,
                registry: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
    """``skopeo copy SOURCE dir:DESTINATION`` (``source`` with its transport prefix)."""
    argv = [find_skopeo(), "copy", "--quiet"]
    if access is not None:
        argv += access.args(registry, workdir, prefix="src-")
    argv += [source, "dir:" + destination]
    _run(argv, "cannot copy %s" % source.replace("docker://", ""), timeout)
