# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""errors.py: every error carries a message a user can act on, plus machine-readable details."""

from __future__ import annotations

import pytest

from ansible_collections.oci.runtime.plugins.module_utils._runtime import errors as E


def test_runtime_command_error_message():
    argv = ["/usr/sbin/runc", "--root", "/r", "--log-format", "json", "start", "c1"]
    err = E.RuntimeCommandError(argv, "start", 1, "container c1 is not in created state", "raw err")
    assert str(err) == "runc start failed (exit 1): container c1 is not in created state"
    assert err.msg == str(err)
    assert err.argv == argv and err.argv is not argv
    assert err.verb == "start"
    assert err.rc == 1
    assert err.runtime_message == "container c1 is not in created state"
    assert err.details == {"argv": argv, "rc": 1, "stderr": "raw err"}
    assert isinstance(err, E.RuntimeCoreError)


def test_runtime_command_error_without_message():
    err = E.RuntimeCommandError(["crun"], "kill", 2, "")
    assert str(err) == "crun kill failed (exit 2): no error message"
    assert err.runtime_message == ""
    assert err.details["stderr"] == ""


@pytest.mark.parametrize("factory,needles", [
    (lambda: E.ContainerExitedError("c1"), ["'c1'", "exited"]),
    (lambda: E.ContainerNotStartedError("c1"), ["'c1'", "did not start"]),
    (lambda: E.ContainerNotStartedError("c1", "runc said no"), ["did not start: runc said no"]),
    (lambda: E.ContainerStartTimeoutError("c1", 2.5), ["'c1'", "2.5 seconds"]),
    (lambda: E.InvalidPidError("/s/pid", "x" * 100), ["/s/pid", "'" + "x" * 40 + "'"]),
    (lambda: E.NotImplementedByRuntimeError("events"), ["not implemented: events"]),
])
def test_seed_errors_messages(factory, needles):
    err = factory()
    assert isinstance(err, E.RuntimeCoreError)
    for needle in needles:
        assert needle in str(err)
    assert err.msg == str(err)


def test_invalid_pid_error_truncates_content():
    err = E.InvalidPidError("/p", "y" * 100)
    assert "y" * 41 not in str(err)
    assert err.details == {"path": "/p"}


def test_details_keyword_arguments():
    err = E.StateError("broken", path="/x")
    assert err.details == {"path": "/x"}
    assert str(err) == "broken"
