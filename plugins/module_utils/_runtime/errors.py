# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Exceptions of the runtime core.

The first group is about containers and their processes (exited, not running, not started, start
timeout, a bad pid file, an operation the runtime lacks); the rest covers bad ids and values, broken
bundles, our records, locks, a missing runtime binary and failed runtime commands. Every error
carries a message a user can act on; a module's ``run_module`` turns them into ``fail_json``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence


class RuntimeCoreError(Exception):
    """Base class: ``str(err)`` is the user-facing message."""

    def __init__(self, msg: str, **details: object) -> None:
        super(RuntimeCoreError, self).__init__(msg)
        self.msg = msg
        self.details = details


# --- containers and their processes -------------------------------------------------------------------------

class ContainerExitedError(RuntimeCoreError):
    """Access to an exited container was attempted."""

    def __init__(self, container_id: str) -> None:
        super(ContainerExitedError, self).__init__(
            "container %r has exited" % container_id, container=container_id)


class ContainerNotRunningError(RuntimeCoreError):
    """A process was to be started in a container that is not running."""

    def __init__(self, container_id: str, status: str) -> None:
        super(ContainerNotRunningError, self).__init__(
            "container %r is %s: processes can only be started in a running container"
            % (container_id, status), container=container_id, status=status)


class ContainerNotStartedError(RuntimeCoreError):
    """The container did not start; ``reason`` is the shim's or the runtime's message."""

    def __init__(self, container_id: str, reason: str = "") -> None:
        msg = "container %r did not start" % container_id
        if reason:
            msg += ": " + reason
        super(ContainerNotStartedError, self).__init__(msg, container=container_id)


class ContainerStartTimeoutError(RuntimeCoreError):
    """The container took longer than the start timeout."""

    def __init__(self, container_id: str, timeout: float) -> None:
        super(ContainerStartTimeoutError, self).__init__(
            "container %r did not start within %s seconds" % (container_id, timeout),
            container=container_id, timeout=timeout)


class InvalidPidError(RuntimeCoreError):
    """A pid file does not hold a positive integer."""

    def __init__(self, path: str, content: str) -> None:
        super(InvalidPidError, self).__init__(
            "process pid in %s is invalid: %r" % (path, content[:40]), path=path)


class NotImplementedByRuntimeError(RuntimeCoreError):
    """The operation is not implemented for this runtime."""

    def __init__(self, what: str) -> None:
        super(NotImplementedByRuntimeError, self).__init__("not implemented: %s" % what)


# --- input, records, locks and the runtime binary ------------------------------------------------------------------------

class InvalidIdError(RuntimeCoreError):
    """An id that is empty, too long, or could escape the state directory."""


class NoSuchContainerError(RuntimeCoreError):
    """The state dir has no record of a container that the task needs to exist; ``why`` says
    what the task would have done with it."""

    def __init__(self, container_id: str, state_dir: str, why: str = "") -> None:
        msg = "container %r does not exist under %s" % (container_id, state_dir)
        if why:
            msg += ": " + why
        super(NoSuchContainerError, self).__init__(msg, container=container_id)


class InvalidValueError(RuntimeCoreError, ValueError):
    """A task value that cannot be right (a signal, a timeout); also a ValueError, so callers that
    catch ValueError keep working."""


class BundleError(RuntimeCoreError):
    """A bundle directory or its config.json is missing or unusable."""


class UserLookupError(BundleError):
    """A user string that is not ``uid[:gid]`` or ``name[:group]``, or a name that the root
    filesystem's /etc/passwd or /etc/group does not know."""


class StateError(RuntimeCoreError):
    """Our on-disk records are unreadable, inconsistent, or cannot be written."""


class LockTimeoutError(RuntimeCoreError):
    """Another run held the container's lock for too long."""


class RuntimeNotFoundError(RuntimeCoreError):
    """The OCI runtime binary does not exist or is not executable."""


class RuntimeCommandError(RuntimeCoreError):
    """The OCI runtime exited non-zero; the message quotes the runtime's own error."""

    def __init__(self, argv: Sequence[str], verb: str, rc: int, message: str,
                 stderr: str = "") -> None:
        binary = argv[0].rsplit("/", 1)[-1]
        text = "%s %s failed (exit %s): %s" % (binary, verb, rc, message or "no error message")
        super(RuntimeCommandError, self).__init__(text, argv=list(argv), rc=rc, stderr=stderr)
        self.argv = list(argv)
        self.verb = verb
        self.rc = rc
        self.runtime_message = message
