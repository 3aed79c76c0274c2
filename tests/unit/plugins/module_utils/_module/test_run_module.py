# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""common.run_module: the one main() of every module, driven with fake convergers."""

from __future__ import annotations

import json

import pytest

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args

from ansible_collections.oci.runtime.plugins.module_utils._module import common
from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import (
    RuntimeCommandError,
    StateError,
)

OPTIONS = dict(name=dict(type="str", required=True))


def _converger(outcome):
    """A converger class whose run() returns ``outcome`` or raises it; it records its arguments."""

    class Fake(object):
        seen = []

        def __init__(self, params, check_mode=False):
            self.seen.append((dict(params), check_mode))

        def run(self):
            if isinstance(outcome, BaseException):
                raise outcome
            return dict(outcome)

    return Fake


@pytest.fixture
def warned(monkeypatch):
    """The messages given to AnsibleModule.warn (never passed as a ``warnings`` result key)."""
    messages = []
    monkeypatch.setattr(AnsibleModule, "warn", lambda self, warning: messages.append(warning))
    return messages


def _run(converger, args, capsys, **kwargs):
    """(exit code, the module's JSON result)."""
    with patch_module_args(args):
        with pytest.raises(SystemExit) as info:
            common.run_module(converger, OPTIONS, **kwargs)
    return info.value.code, json.loads(capsys.readouterr().out)


def test_result_and_params_with_common_options(capsys):
    fake = _converger({"changed": True, "actions": ["start"]})
    code, result = _run(fake, {"name": "a", "_ansible_check_mode": True}, capsys)
    assert code == 0
    assert result["changed"] is True and result["actions"] == ["start"]
    params, check_mode = fake.seen[0]
    assert check_mode is True
    assert params["name"] == "a" and params["state_dir"] == common.DEFAULT_STATE_DIR
    assert "runtime" in params and "runtime_root" in params


def test_without_common_options(capsys):
    fake = _converger({"changed": False})
    code, dummy = _run(fake, {"name": "a"}, capsys, common_options=False)
    assert code == 0
    assert set(fake.seen[0][0]) == {"name"}


def test_warnings_become_module_warnings(capsys, warned):
    code, result = _run(_converger({"changed": False, "warnings": ["one", "two"]}), {"name": "a"},
                        capsys)
    assert code == 0
    assert warned == ["one", "two"] and "warnings" not in result


def test_failed_result_fails_with_the_rest_of_it(capsys, warned):
    outcome = {"changed": True, "failed": True, "msg": "1 of 2 failed", "containers": [1, 2],
               "warnings": ["w"]}
    code, result = _run(_converger(outcome), {"name": "a"}, capsys)
    assert code == 1
    assert result["failed"] is True and result["msg"] == "1 of 2 failed"
    assert result["containers"] == [1, 2] and result["changed"] is True
    assert warned == ["w"] and "warnings" not in result


def test_task_failed_error_returns_its_result_and_details(capsys, warned):
    error = common.TaskFailedError("non-zero return code",
                                   {"changed": True, "msg": "replaced", "stdout": "out",
                                    "exit_status": 3, "warnings": ["w"]}, rc=3, other="not returned")
    code, result = _run(_converger(error), {"name": "a"}, capsys)
    assert code == 1
    assert result["msg"] == "non-zero return code"
    assert result["rc"] == 3 and result["stdout"] == "out" and result["exit_status"] == 3
    assert result["changed"] is True and "other" not in result
    assert warned == ["w"] and "warnings" not in result


def test_core_error_returns_the_failure_details_only(capsys):
    error = RuntimeCommandError(["/usr/bin/runc", "start", "x"], "start", 1, "boom", stderr="err")
    error.details["status"] = "not a failure detail"
    code, result = _run(_converger(error), {"name": "a"}, capsys)
    assert code == 1
    assert result["msg"] == "runc start failed (exit 1): boom"
    assert result["argv"] == ["/usr/bin/runc", "start", "x"]
    assert result["rc"] == 1 and result["stderr"] == "err"
    assert "status" not in result and "changed" not in result


def test_core_error_path_detail(capsys):
    code, result = _run(_converger(StateError("damaged", path="/x/state.json", container="c")),
                        {"name": "a"}, capsys)
    assert code == 1
    assert (result["msg"], result["path"], result["container"]) == ("damaged", "/x/state.json", "c")


def test_value_error_fails_with_its_text(capsys):
    code, result = _run(_converger(ValueError("bad value")), {"name": "a"}, capsys)
    assert code == 1 and result["msg"] == "bad value"


def test_argument_errors_are_ansibles(capsys):
    fake = _converger({"changed": False})
    code, result = _run(fake, {}, capsys)
    assert code == 1 and "name" in result["msg"]
    assert fake.seen == []
