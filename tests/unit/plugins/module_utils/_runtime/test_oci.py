# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""oci.py: log parsing, binary lookup, argv building, and ``run`` against a fake runtime script."""

from __future__ import annotations

import json
import os
import textwrap

import pytest

from ansible_collections.oci.runtime.plugins.module_utils._runtime import oci
from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import (
    RuntimeCommandError,
    RuntimeNotFoundError,
)


def _entry(level, msg):
    return json.dumps({"level": level, "msg": msg, "time": "2026-11-30T06:33:26Z"})


# --- parse_runtime_log -----------------------------------------------------------------------------

def test_parse_runtime_log_json_lines():
    text = "\n".join([
        _entry("info", "starting"),
        _entry("error", "container_linux.go:380: starting container process caused: exec: \"nope\""),
        _entry("warning", "careful"),
        _entry("fatal", "boom"),
        "",
    ])
    assert oci.parse_runtime_log(text) == (
        "container_linux.go:380: starting container process caused: exec: \"nope\"; boom")


def test_parse_runtime_log_concatenated_without_newline():
    # runc appends to --log without newlines between entries in some paths.
    text = _entry("error", "first") + _entry("debug", "noise") + _entry("error", "second")
    assert oci.parse_runtime_log(text) == "first; second"


def test_parse_runtime_log_concatenated_with_spaces_and_newlines():
    text = _entry("error", "a") + "  " + _entry("panic", "b") + "\n" + _entry("error", "c") + "\n"
    assert oci.parse_runtime_log(text) == "a; b; c"


def test_parse_runtime_log_dedups():
    text = "\n".join([_entry("error", "same"), _entry("error", "same  "), _entry("fatal", "same")])
    assert oci.parse_runtime_log(text) == "same"


def test_parse_runtime_log_plain_text():
    text = "container \"c1\" does not exist\nsecond line\n\n"
    assert oci.parse_runtime_log(text) == 'container "c1" does not exist; second line'


def test_parse_runtime_log_mixed_and_broken_json():
    text = "\n".join([_entry("error", "real"), '{"level": "error", "msg": "trunc', "plain"])
    assert oci.parse_runtime_log(text) == 'real; {"level": "error", "msg": "trunc; plain'


def test_parse_runtime_log_json_then_trailing_text():
    text = _entry("error", "msg") + " trailing words"
    assert oci.parse_runtime_log(text) == "msg; trailing words"


def test_parse_runtime_log_ignores_non_objects_and_empty_messages():
    text = "\n".join(["[1, 2]", _entry("error", ""), json.dumps({"level": "error"}),
                      json.dumps({"msg": "no level"})])
    # a JSON array is not an object and does not start with '{': it is kept as plain text
    assert oci.parse_runtime_log(text) == "[1, 2]"


def test_parse_runtime_log_empty():
    assert oci.parse_runtime_log("") == ""
    assert oci.parse_runtime_log(_entry("info", "only info")) == ""


# --- resolve_binary --------------------------------------------------------------------------------

def _script(path, body):
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    path.chmod(0o755)
    return str(path)


def test_resolve_binary_path(tmp_path):
    exe = _script(tmp_path / "myrunc", "exit 0\n")
    assert oci.resolve_binary(exe) == exe
    with pytest.raises(RuntimeNotFoundError) as info:
        oci.resolve_binary(str(tmp_path / "missing"))
    assert "missing" in str(info.value) and "on PATH" not in str(info.value)


def test_resolve_binary_not_executable(tmp_path):
    path = tmp_path / "runc"
    path.write_text("x")
    path.chmod(0o644)
    if os.geteuid() == 0:
        # root may execute nothing without any x bit either: access(X_OK) says no
        assert not os.access(str(path), os.X_OK)
    with pytest.raises(RuntimeNotFoundError):
        oci.resolve_binary(str(path))


def test_resolve_binary_on_path(tmp_path, monkeypatch):
    exe = _script(tmp_path / "fakeruntime-xyz", "exit 0\n")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert oci.resolve_binary("fakeruntime-xyz") == exe
    with pytest.raises(RuntimeNotFoundError) as info:
        oci.resolve_binary("no-such-runtime-xyz")
    assert "on PATH" in str(info.value) and "apt-get install runc" in str(info.value)


def test_resolve_binary_empty():
    with pytest.raises(RuntimeNotFoundError):
        oci.resolve_binary("")
    with pytest.raises(RuntimeNotFoundError):
        oci.resolve_binary(None)


# --- argv ---------------------------------------------------------------------------------------

def test_global_args_and_create_argv(tmp_path):
    exe = _script(tmp_path / "crun", "exit 0\n")
    rt = oci.OciRuntime(exe, root="/run/r", runtime_args=["--systemd-cgroup"])
    assert rt.flavor == "crun"
    assert rt.global_args() == [exe, "--root", "/run/r", "--log-format", "json", "--systemd-cgroup"]
    assert rt.create_argv("c1", "/b", "/p/pid", "/p/log", no_pivot_root=True) == [
        exe, "--root", "/run/r", "--log", "/p/log", "--log-format", "json", "--systemd-cgroup",
        "create", "--bundle", "/b", "--pid-file", "/p/pid", "--no-pivot", "c1"]
    plain = oci.OciRuntime(_script(tmp_path / "runc", "exit 0\n"))
    assert plain.flavor == "runc"
    assert plain.create_argv("c1", "/b", "/pid", "/log") == [
        plain.binary, "--log", "/log", "--log-format", "json", "create", "--bundle", "/b",
        "--pid-file", "/pid", "c1"]


# --- run() against a fake runtime ----------------------------------------------------------------

FAKE_RUNTIME = """\
# A stand-in for runc: records its argv, answers a few verbs the way runc does.
echo "$@" >> "$(dirname "$0")/calls"
for last; do :; done
case " $* " in
  *" state missing "*)
    echo '{"level":"error","msg":"container \\"missing\\" does not exist","time":"t"}' >&2; exit 1 ;;
  *" state garbage "*) echo 'not json'; exit 0 ;;
  *" state "*) echo '{"id":"'"$last"'","status":"running","pid":42}'; exit 0 ;;
  *" delete "*"missing "*)
    echo '{"level":"error","msg":"container does not exist","time":"t"}' >&2; exit 1 ;;
  *" kill "*)
    echo '{"level":"error","msg":"container not running","time":"t"}{"level":"error","msg":"again","time":"t"}' >&2
    exit 1 ;;
  *" pause "*) echo 'plain failure on stderr' >&2; exit 3 ;;
  *" resume "*) echo 'only stdout'; exit 4 ;;
esac
exit 0
"""


@pytest.fixture
def fake(tmp_path):
    return oci.OciRuntime(_script(tmp_path / "runc", FAKE_RUNTIME), root=str(tmp_path / "root"))


def _calls(rt):
    with open(os.path.join(os.path.dirname(rt.binary), "calls")) as handle:
        return [line.split() for line in handle]


def test_run_state(fake, tmp_path):
    assert fake.state("c1") == {"id": "c1", "status": "running", "pid": 42}
    assert fake.state("missing") is None
    assert fake.calls == 2
    assert _calls(fake)[0] == ["--root", str(tmp_path / "root"), "--log-format", "json", "state", "c1"]


def test_run_state_not_json(fake):
    with pytest.raises(RuntimeCommandError) as info:
        fake.state("garbage")
    assert "not JSON" in str(info.value)


def test_run_delete(fake):
    assert fake.delete("c1", force=True) is True
    assert fake.delete("missing") is False
    assert _calls(fake)[0][-3:] == ["delete", "--force", "c1"]


def test_run_error_quotes_runtime_json_log(fake):
    with pytest.raises(RuntimeCommandError) as info:
        fake.kill("c1", 15, all_processes=True)
    err = info.value
    assert err.rc == 1 and err.verb == "kill"
    assert err.runtime_message == "container not running; again"
    assert str(err) == "runc kill failed (exit 1): container not running; again"
    assert err.argv[-4:] == ["kill", "--all", "c1", "15"]


def test_run_error_plain_stderr_and_stdout_fallback(fake):
    with pytest.raises(RuntimeCommandError) as info:
        fake.pause("c1")
    assert info.value.rc == 3 and info.value.runtime_message == "plain failure on stderr"
    with pytest.raises(RuntimeCommandError) as info:
        fake.resume("c1")
    assert info.value.rc == 4 and info.value.runtime_message == "only stdout"


def test_run_ok_codes_and_stdin(fake, tmp_path):
    out = fake.run("resume", ["c1"], stdin_data="input", ok_codes=(0, 4))
    assert out.strip() == "only stdout"


def test_run_timeout(tmp_path):
    rt = oci.OciRuntime(_script(tmp_path / "slow", "exec sleep 30\n"), timeout=0.3)
    with pytest.raises(RuntimeCommandError) as info:
        rt.run("state", ["c1"])
    assert info.value.rc == -9 and "timed out" in str(info.value)


def test_run_binary_vanished(tmp_path):
    exe = _script(tmp_path / "runc", "exit 0\n")
    rt = oci.OciRuntime(exe)
    os.unlink(exe)
    with pytest.raises(RuntimeNotFoundError):
        rt.run("state", ["c1"])
