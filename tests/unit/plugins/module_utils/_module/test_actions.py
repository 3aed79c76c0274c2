# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""actions.py: actions as data, rendered to the texts the modules return."""

from __future__ import annotations

import pytest

from ansible_collections.oci.runtime.plugins.module_utils._module.actions import Action, ActionLog


@pytest.mark.parametrize("action,text", [
    (Action("stop"), "stop"),
    (Action("update", "labels"), "update labels"),
    (Action("signal", "15"), "signal 15"),
    (Action("recreate", why="because bundle changed"), "recreate: because bundle changed"),
    (Action("build", "rootfs", "from archive sha256:ab"), "build rootfs: from archive sha256:ab"),
    (Action("checkpoint", "and exit"), "checkpoint and exit"),
])
def test_rendering(action, text):
    assert str(action) == text


def test_act_runs_unless_check_mode():
    calls = []
    log = ActionLog()
    log.act("signal", calls.append, 9, target=9)
    log.note("register", why="record it")
    assert calls == [9]
    assert log.rendered() == ["signal 9", "register: record it"]
    assert list(log) == [Action("signal", "9"), Action("register", "", "record it")]
    assert len(log) == 2 and bool(log)

    planned = ActionLog(check_mode=True)
    planned.act("start", calls.append, "never")
    assert calls == [9] and planned.rendered() == ["start"]


def test_has_asks_about_verbs_not_text():
    log = ActionLog()
    assert not log and not log.has("create")
    log.note("create", "bundle directory")
    log.note("recreate", why="because create changed")
    assert log.has("create") and log.has("start", "recreate")
    assert not log.has("bundle", "because", "cre")
