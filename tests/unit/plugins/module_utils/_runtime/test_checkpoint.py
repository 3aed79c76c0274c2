# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""checkpoint.py: finding CRIU, its error lines, the runtime flags of the options, and the store
(create with a fake runtime standing in for ``runc checkpoint``, replace, list, remove; no CRIU)."""

from __future__ import annotations

import json
import os
import stat

import pytest

from ansible_collections.oci.runtime.plugins.module_utils._runtime import checkpoint as C
from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import (
    InvalidIdError,
    NotImplementedByRuntimeError,
    RuntimeCommandError,
)
from ansible_collections.oci.runtime.plugins.module_utils._runtime.record import ContainerRecord


def _script(tmp_path, name, body):
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


# --- CRIU ------------------------------------------------------------------------------------------

def test_find_criu_given_path(tmp_path):
    criu = _script(tmp_path, "criu", "exit 0\n")
    assert C.find_criu(criu) == criu
    (tmp_path / "not-executable").write_text("x")
    for path in (str(tmp_path / "not-executable"), str(tmp_path / "missing")):
        with pytest.raises(C.CheckpointError) as info:
            C.find_criu(path)
        assert "does not exist or is not executable" in info.value.msg


def test_find_criu_on_the_path_or_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    try:
        found = C.find_criu()
    except C.CheckpointError as exc:
        assert "CRIU is not installed" in exc.msg and "criu_path" in exc.msg
    else:
        assert os.path.isabs(found) and os.path.basename(found) == "criu" and os.access(found, os.X_OK)


def test_criu_check_hint(tmp_path):
    assert C.criu_check_hint(_script(tmp_path, "good", "exit 0\n")) == ""
    bad = _script(tmp_path, "bad", "echo one; echo two; echo 'Error (criu/cr-check.c:1): no seccomp'; exit 1\n")
    hint = C.criu_check_hint(bad)
    assert hint.startswith("; 'criu check' fails on this host (two Error (criu/cr-check.c:1): no seccomp)")
    assert "could not run" in C.criu_check_hint(str(tmp_path / "missing"))


def test_criu_errors(tmp_path):
    log = tmp_path / "dump.log"
    assert C.criu_errors(str(log)) == ""  # no log
    log.write_text("(00.001) Version: 4.1\n"
                   "(00.002) Error (criu/util.c:1): Can't setup RLIMIT_NOFILE for self\n"
                   "(00.003) Error (criu/sk-inet.c:2): inet: Connected TCP socket, consider using --tcp-established\n"
                   "(00.004) Error (criu/cr-dump.c:3): Dumping FAILED.\n")
    assert C.criu_errors(str(log)) == \
        "inet: Connected TCP socket, consider using --tcp-established; Dumping FAILED."
    assert C.criu_errors(str(log), limit=1) == "inet: Connected TCP socket, consider using --tcp-established"
    log.write_text("(00.001) Version: 4.1\n(00.002)      1: Unable to open image pstree.img\n")
    assert C.criu_errors(str(log)) == "Unable to open image pstree.img (last line of %s)" % log


def test_failure_text_joins_runtime_criu_and_hint(tmp_path):
    log = tmp_path / "dump.log"
    log.write_text("(00.004) Error (criu/cr-dump.c:3): Dumping FAILED.\n")
    exc = RuntimeCommandError(["/usr/sbin/runc"], "checkpoint", 1, "criu failed: type NOTIFY errno 0")
    text = C.failure_text(exc, str(log), _script(tmp_path, "criu", "exit 0\n"))
    assert text == "criu failed: type NOTIFY errno 0; CRIU: Dumping FAILED."


# --- options ---------------------------------------------------------------------------------------

class FakeRuntime(object):
    """Stands in for OciRuntime: ``checkpoint`` writes an image file (or fails)."""

    flavor = "runc"

    def __init__(self, fail=False):
        self.fail = fail
        self.calls = []

    def run(self, verb, args, criu=None):
        self.calls.append((verb, list(args), criu))
        image_path = args[args.index("--image-path") + 1]
        work_path = args[args.index("--work-path") + 1]
        with open(os.path.join(image_path, "pages-1.img"), "wb") as handle:
            handle.write(b"x" * 100)
        if self.fail:
            with open(os.path.join(work_path, "dump.log"), "w") as handle:
                handle.write("(00.1) Error (criu/cr-dump.c:1): Dumping FAILED.\n")
            raise RuntimeCommandError(["runc"], verb, 1, "criu failed")
        return ""


def test_option_args():
    options = C.checkpoint_options({"tcp": True, "unix_sockets": True, "shell": True,
                                    "empty_ns": ["network"]})
    assert C.option_args(options, FakeRuntime()) == [
        "--tcp-established", "--ext-unix-sk", "--shell-job", "--empty-ns", "network"]
    assert C.option_args(C.checkpoint_options({}), FakeRuntime()) == []
    crun = FakeRuntime()
    crun.flavor = "crun"
    with pytest.raises(NotImplementedByRuntimeError):
        C.option_args(C.checkpoint_options({"empty_ns": ["network"]}), crun)


# --- the store -------------------------------------------------------------------------------------

class FakeContainer(object):
    def __init__(self, runtime):
        self.id = "web"
        self.runtime = runtime
        self.record = ContainerRecord("/srv/web", config_digest="sha256:cfg")


def test_store_paths(tmp_path):
    with pytest.raises(C.CheckpointError):
        C.CheckpointStore("relative")
    store = C.CheckpointStore(str(tmp_path / "ck") + "/")
    assert store.path("one") == str(tmp_path / "ck" / "one")
    assert store.work_dir("one", "dump") == str(tmp_path / "ck" / C.WORK_DIR / "one-dump")
    for bad in ("../x", "", ".hidden", "a/b"):
        with pytest.raises(InvalidIdError):
            store.path(bad)


def test_create_get_list_remove(tmp_path):
    store = C.CheckpointStore(str(tmp_path / "ck"))
    assert store.get("one") is None and store.list() == []
    runtime = FakeRuntime()
    options = C.checkpoint_options({"tcp": True})
    made = store.create(FakeContainer(runtime), "one", options, "/usr/local/sbin/criu")
    verb, args, criu = runtime.calls[0]
    assert verb == "checkpoint" and criu == "/usr/local/sbin/criu" and args[-1] == "web"
    assert "--leave-running" in args and "--tcp-established" in args
    assert made["name"] == "one" and made["path"] == store.path("one") and made["created"]
    assert (made["container"], made["bundle"], made["config_digest"]) == ("web", "/srv/web", "sha256:cfg")
    assert made["options"] == options
    assert made["size_bytes"] >= 100
    image = os.path.join(store.path("one"), "pages-1.img")
    assert stat.S_IMODE(os.stat(image).st_mode) == 0o600  # CRIU writes 0644
    with open(os.path.join(store.path("one"), C.META_FILE)) as handle:
        assert json.load(handle)["container"] == "web"
    assert [c["name"] for c in store.list()] == ["one"]
    os.makedirs(os.path.join(store.directory, "no-metadata"))
    assert [c["name"] for c in store.list()] == ["one"]
    store.remove("one")
    assert store.list() == [] and not os.path.exists(store.work_dir("one", "dump"))


def test_exit_option_stops_the_container(tmp_path):
    store = C.CheckpointStore(str(tmp_path / "ck"))
    runtime = FakeRuntime()
    store.create(FakeContainer(runtime), "one", C.checkpoint_options({"exit": True}), None)
    assert "--leave-running" not in runtime.calls[0][1]


def test_an_existing_checkpoint_is_replaced_only_with_force(tmp_path):
    store = C.CheckpointStore(str(tmp_path / "ck"))
    container = FakeContainer(FakeRuntime())
    first = store.create(container, "one", C.checkpoint_options({}), None)
    with pytest.raises(C.CheckpointError) as info:
        store.create(container, "one", C.checkpoint_options({}), None)
    assert "already exists" in info.value.msg and "force" in info.value.msg
    second = store.create(container, "one", C.checkpoint_options({"shell": True}), None, force=True)
    assert second["options"]["shell"] and not first["options"]["shell"]
    assert sorted(os.listdir(store.directory)) == [C.WORK_DIR, "one"]  # no staging or old copy left


def test_a_failed_checkpoint_leaves_nothing_and_quotes_criu(tmp_path):
    store = C.CheckpointStore(str(tmp_path / "ck"))
    criu = _script(tmp_path, "criu", "exit 0\n")
    with pytest.raises(C.CheckpointError) as info:
        store.create(FakeContainer(FakeRuntime(fail=True)), "one", C.checkpoint_options({}), criu)
    assert info.value.msg == "checkpoint of container 'web' failed: criu failed; CRIU: Dumping FAILED."
    assert store.get("one") is None
    assert sorted(os.listdir(store.directory)) == [C.WORK_DIR]  # the work dir keeps CRIU's log


def test_metadata_that_is_not_an_object(tmp_path):
    store = C.CheckpointStore(str(tmp_path / "ck"))
    os.makedirs(store.path("one"))
    with open(os.path.join(store.path("one"), C.META_FILE), "w") as handle:
        handle.write("[]")
    with pytest.raises(C.CheckpointError) as info:
        store.get("one")
    assert "is not checkpoint metadata" in info.value.msg


def test_dir_size(tmp_path):
    (tmp_path / "a").write_bytes(b"x" * 10)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b").write_bytes(b"x" * 5)
    os.symlink("/nonexistent", str(tmp_path / "d" / "link"))
    assert C.dir_size(str(tmp_path)) == 15 + len("/nonexistent")
