# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: oci
short_description: Run tasks inside OCI containers (runc, crun) through the runtime's exec
version_added: 0.1.0
author:
  - oci.runtime developers (@oci-runtime)
description:
  - Runs commands in a running container with the runtime's C(exec) (C(runc exec)), and copies files
    into and out of it through the standard input and output of an exec'd C(cat).
  - The connection runs on the controller, which therefore must be the container host, as root
    (the runtime and the collection's records are root's), with the runtime installed there. This is
    like P(community.docker.docker#connection), which needs the Docker CLI where Ansible runs. To
    reach containers on other hosts, run the play on those hosts (for example with
    C(ansible-pull)), or manage the containers with the modules of the collection over SSH.
  - The container id is the inventory host name, or C(ansible_host). The inventory plugin
    P(oci.runtime.containers#inventory) presets every variable this plugin needs.
  - When the container is recorded under O(state_dir) (it was started with M(oci.runtime.container)),
    commands run with its recorded process spec (environment, working directory, user,
    capabilities, rlimits), with the runtime, runtime root and global runtime arguments it was
    created with unless O(runtime) or O(runtime_root) say otherwise. Otherwise the runtime builds
    the process from the bundle's C(config.json), as a plain C(runc exec) does.
  - Modules need a Python in the container, and file transfers need C(/bin/sh) and C(cat) there;
    M(ansible.builtin.raw) needs only the shell.
options:
  remote_addr:
    description:
      - The id of the container.
    type: str
    default: inventory_hostname
    vars:
      - name: inventory_hostname
      - name: ansible_host
      - name: ansible_oci_host
  remote_user:
    description:
      - The user to run as inside the container, as C(uid), C(uid:gid), C(name) or C(name:group).
        Names are looked up in the container's own C(/etc/passwd) and C(/etc/group); a C(uid)
        without a group gets its primary group from there (else group 0).
      - Default the user of the container's process spec.
      - Privilege escalation (C(become)) is left to the container's own tools (C(su), C(sudo)) if it
        has them, without a terminal (so without a password prompt); they cannot gain privileges
        when the process spec sets C(noNewPrivileges), as C(runc spec) does. Setting this option is
        the simpler way to change user.
    type: str
    vars:
      - name: ansible_user
      - name: ansible_oci_user
    env:
      - name: ANSIBLE_REMOTE_USER
    ini:
      - section: defaults
        key: remote_user
    cli:
      - name: user
    keyword:
      - name: remote_user
  state_dir:
    description:
      - The collection's state directory, where M(oci.runtime.container) recorded the container.
      - A container that is not recorded there is still reached, through O(runtime) and
        O(runtime_root), with the bundle's process spec.
    type: path
    default: /run/oci-runtime
    vars:
      - name: ansible_oci_state_dir
    env:
      - name: ANSIBLE_OCI_STATE_DIR
  runtime:
    description:
      - The OCI runtime binary on the controller, as a name looked up on E(PATH) or an absolute path.
      - Default the runtime the container was created with, else V(runc).
    type: str
    vars:
      - name: ansible_oci_runtime
    env:
      - name: ANSIBLE_OCI_RUNTIME
  runtime_root:
    description:
      - The runtime's state directory (its C(--root)).
      - Default the runtime root the container was created with (read from
        C(<state_dir>/<id>/state.json)), else the runtime's default (C(/run/runc) for runc).
    type: path
    vars:
      - name: ansible_oci_runtime_root
    env:
      - name: ANSIBLE_OCI_RUNTIME_ROOT
extends_documentation_fragment:
  - connection_pipelining
notes:
  - The container must be running; a paused, stopped or missing container fails the task as
    unreachable, with the runtime's message.
  - Every command is one C(exec) of C(/bin/sh -c) (the play's shell executable). Enable pipelining to
    save the file transfers of modules.
  - Files are written by C(sh -c 'cat > path') as the connection's user and read with C(cat path),
    so they are not limited in size and keep the container's view of its file system (mounts
    included).
seealso:
  - plugin: oci.runtime.containers
    plugin_type: inventory
  - module: oci.runtime.container
"""

EXAMPLES = r"""
# inventory.ini: a container started with oci.runtime.container on the controller
# [containers]
# web ansible_connection=oci.runtime.oci ansible_python_interpreter=/usr/bin/python3
#
# [containers:vars]
# ansible_oci_state_dir=/run/oci-runtime

- name: Configure the application inside its container
  hosts: containers
  gather_facts: false
  tasks:
    - name: Write its configuration
      ansible.builtin.copy:
        dest: /etc/app/app.conf
        content: "listen = 8080\n"
        mode: "0644"

    - name: Ask it for its version
      ansible.builtin.command: /app/bin/app --version
      register: app_version
      changed_when: false

- name: Run one task in a container from a play on the container host
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Read the container's os-release
      ansible.builtin.raw: cat /etc/os-release
      delegate_to: web
      vars:
        ansible_connection: oci.runtime.oci
        ansible_oci_runtime_root: /run/runc
      register: os_release
      changed_when: false
"""

import json
import os
import shutil
import subprocess
import tempfile

from ansible.errors import AnsibleConnectionFailure, AnsibleError, AnsibleFileNotFound
from ansible.module_utils.common.text.converters import to_bytes, to_native, to_text
from ansible.plugins.connection import ConnectionBase
from ansible.utils.display import Display

from ansible_collections.oci.runtime.plugins.module_utils._runtime import layout as L
from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import RuntimeCoreError
from ansible_collections.oci.runtime.plugins.module_utils._runtime.oci import (
    DEFAULT_RUNTIME,
    OciRuntime,
    parse_runtime_log,
)
from ansible_collections.oci.runtime.plugins.module_utils._runtime.process import ProcessRecord
from ansible_collections.oci.runtime.plugins.module_utils._runtime.record import ContainerRecord
from ansible_collections.oci.runtime.plugins.module_utils._runtime.users import resolve_user

display = Display()

# Fields the collection adds to an OCI process spec in process.json; not the runtime's.
RECORD_ONLY_KEYS = ("containerdStdin", "containerdStdout", "containerdStderr", "exec", "runtimeArgs",
                    "noPivotRoot", "checkpoint", "rootUID", "rootGID")
SHELL = "/bin/sh"
# Run by SHELL with the path as $1: no quoting of the path is needed.
WRITE_SCRIPT = 'cat > "$1"'
READ_SCRIPT = 'cat "$1"'
SHELL_NOT_FOUND = 127


def exec_process(recorded_spec, args, user_ids=None):
    """The OCI process for one exec: the recorded spec of the container's process with ``args``,
    no terminal, and the user replaced when ``user_ids`` (uid, gid) is given."""
    spec = {k: v for k, v in recorded_spec.items() if k not in RECORD_ONLY_KEYS}
    spec["args"] = list(args)
    spec["terminal"] = False
    if user_ids is not None:
        user = {"uid": user_ids[0], "gid": user_ids[1]}
        if "umask" in (spec.get("user") or {}):
            user["umask"] = spec["user"]["umask"]
        spec["user"] = user
    return spec


def exec_argv(runtime, container_id, args, log_file, process_file=None, user_ids=None):
    """argv of ``<runtime> <globals> exec``: with the process spec file when there is one (it holds
    args and user), else the command line form that takes the process from the bundle."""
    argv = runtime.global_args(log_file) + ["exec"]
    if process_file:
        return argv + ["--process", process_file, container_id]
    if user_ids is not None:
        argv += ["--user", "%d:%d" % user_ids]
    return argv + [container_id] + list(args)


class ExecTarget(object):
    """Where and how to exec into one container, resolved from the options and the records."""

    def __init__(self, container_id, state_dir=None, runtime=None, runtime_root=None):
        self.container_id = L.validate_id(container_id, "container id (the inventory host or ansible_host)")
        self.state_dir = state_dir
        self.record = None
        self.spec = None
        self.init = None
        if state_dir:
            layout = L.Layout(state_dir)
            self.record = ContainerRecord.read(layout.state_file(self.container_id))
            if self.record is not None:
                self.init = ProcessRecord(layout, self.container_id, L.INIT_PROCESS_ID)
                spec = self.init.spec()
                self.spec = spec if isinstance(spec, dict) and spec else None
        record = self.record
        name = runtime or (record.runtime if record is not None else DEFAULT_RUNTIME)
        root = runtime_root or (record.runtime_root if record is not None else None)
        # The recorded global arguments belong to the recorded runtime only.
        runtime_args = record.runtime_args if record is not None and name == record.runtime else []
        self.runtime = OciRuntime(name, root=root, runtime_args=runtime_args)

    def init_pid(self):
        """Host pid of the container's process: recorded, else the runtime's (one `state` call)."""
        if self.init is not None and self.init.alive():  # the same process, not a reused pid
            return self.init.pid
        state = self.runtime.state(self.container_id)
        return (state or {}).get("pid") or None


class Connection(ConnectionBase):
    """Runs commands in a container with ``<runtime> exec`` on the controller host."""

    transport = "oci.runtime.oci"
    has_pipelining = True

    def __init__(self, *args, **kwargs):
        super(Connection, self).__init__(*args, **kwargs)
        self._target = None
        self._user_ids = None

    # --- connect ------------------------------------------------------------------------------

    def _connect(self):
        super(Connection, self)._connect()
        if not self._connected:
            try:
                self._target = ExecTarget(self.get_option("remote_addr"), self.get_option("state_dir"),
                                          self.get_option("runtime"), self.get_option("runtime_root"))
            except RuntimeCoreError as exc:
                raise AnsibleConnectionFailure(exc.msg)
            user = self.get_option("remote_user")
            self._user_ids = self._resolve_user(user) if user else None
            display.vvv(u"ESTABLISH OCI CONNECTION TO CONTAINER %s (runtime %s, root %s) FOR USER: %s"
                        % (self._target.container_id, self._target.runtime.binary,
                           self._target.runtime.root or "default", user or "(the container's)"),
                        host=self._target.container_id)
            self._connected = True
        return self

    def _resolve_user(self, user):
        """(uid, gid) of ``user``: names (and a uid's primary group) come from the container's own
        /etc/passwd and /etc/group, read through its root as the host sees it (its mounts
        included), and only when a name needs them."""
        try:
            return resolve_user(user, self._container_file, origin="remote_user")
        except RuntimeCoreError as exc:
            raise AnsibleConnectionFailure("container %s: %s" % (self._target.container_id, exc.msg))

    def _container_file(self, path):
        """The text of ``path`` (relative to the container's root: ``etc/passwd``), '' when it
        cannot be read."""
        target = self._target
        try:
            pid = target.init_pid()
        except RuntimeCoreError as exc:
            raise AnsibleConnectionFailure(exc.msg)
        if not pid:
            raise AnsibleConnectionFailure(
                "container %s does not run (runtime root %s, state_dir %s): its /%s cannot be read "
                "to look up remote_user" % (target.container_id,
                                            target.runtime.root or "the runtime's default",
                                            target.state_dir or "none", path))
        try:
            with open("/proc/%d/root/%s" % (pid, path), "rb") as handle:
                return to_text(handle.read(), errors="surrogate_or_replace")
        except (IOError, OSError):
            return ""

    # --- running one exec ---------------------------------------------------------------------

    def _exec(self, args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, in_data=None):
        """Run ``args`` in the container; (rc, stdout, stderr). A failure of the runtime itself
        (no such container, not running, no such program) raises AnsibleConnectionFailure."""
        target = self._target
        work = tempfile.mkdtemp(prefix="oci-runtime-exec.")
        try:
            log_file = os.path.join(work, "runtime.log")
            process_file = None
            if target.spec is not None:
                process_file = os.path.join(work, "process.json")
                with open(process_file, "w") as handle:
                    json.dump(exec_process(target.spec, args, self._user_ids), handle)
            argv = exec_argv(target.runtime, target.container_id, args, log_file, process_file,
                             self._user_ids)
            display.vvv(u"EXEC %s" % to_text(argv), host=target.container_id)
            try:
                proc = subprocess.Popen([to_bytes(a, errors="surrogate_or_strict") for a in argv],
                                        stdin=stdin, stdout=stdout, stderr=subprocess.PIPE)
            except OSError as exc:
                raise AnsibleConnectionFailure("cannot run %s: %s" % (target.runtime.binary, exc))
            out, err = proc.communicate(in_data if stdin == subprocess.PIPE else None)
            if proc.returncode != 0:
                failure = self._runtime_failure(log_file)
                if failure:
                    raise AnsibleConnectionFailure(failure)
            return proc.returncode, out or b"", err or b""
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _runtime_failure(self, log_file):
        """The runtime's own error message (from its JSON log), with the container's coordinates;
        '' when the runtime only passed on the command's exit status."""
        try:
            with open(log_file, "rb") as handle:
                message = parse_runtime_log(to_text(handle.read(), errors="surrogate_or_replace"))
        except (IOError, OSError):
            return ""
        if not message:
            return ""
        target = self._target
        return ("%s exec in container %s (runtime root %s, state_dir %s) failed: %s"
                % (os.path.basename(target.runtime.binary), target.container_id,
                   target.runtime.root or "the runtime's default",
                   target.state_dir or "none", message))

    # --- the connection API -------------------------------------------------------------------

    def exec_command(self, cmd, in_data=None, sudoable=False):
        super(Connection, self).exec_command(cmd, in_data=in_data, sudoable=sudoable)
        executable = self._play_context.executable or SHELL
        return self._exec([executable, "-c", to_text(cmd)], in_data=in_data)

    @staticmethod
    def _absolute(path):
        """Relative remote paths are taken from / (a container may have no home directory)."""
        path = to_text(path)
        if not path.startswith("/"):
            path = "/" + path
        return os.path.normpath(path)

    def put_file(self, in_path, out_path):
        super(Connection, self).put_file(in_path, out_path)
        out_path = self._absolute(out_path)
        container = self._target.container_id
        display.vvv(u"PUT %s TO %s" % (in_path, out_path), host=container)
        b_in_path = to_bytes(in_path, errors="surrogate_or_strict")
        if not os.path.exists(b_in_path):
            raise AnsibleFileNotFound("file or module does not exist: %s" % to_native(in_path))
        try:
            with open(b_in_path, "rb") as handle:
                rc, dummy, err = self._transfer(WRITE_SCRIPT, out_path, stdin=handle)
        except AnsibleConnectionFailure as exc:
            raise AnsibleError(self._transfer_hint("put %s into" % out_path, exc))
        if rc != 0:
            raise AnsibleError(self._transfer_error("write %s in" % out_path, rc, err))

    def fetch_file(self, in_path, out_path):
        super(Connection, self).fetch_file(in_path, out_path)
        in_path = self._absolute(in_path)
        container = self._target.container_id
        display.vvv(u"FETCH %s TO %s" % (in_path, out_path), host=container)
        b_out_path = to_bytes(out_path, errors="surrogate_or_strict")
        directory = os.path.dirname(b_out_path) or b"."
        fd, b_tmp = tempfile.mkstemp(dir=directory, prefix=b"." + os.path.basename(b_out_path) + b".")
        try:
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(fd, 0o666 & ~umask)
            with os.fdopen(fd, "wb") as handle:
                try:
                    rc, dummy, err = self._transfer(READ_SCRIPT, in_path, stdout=handle)
                except AnsibleConnectionFailure as exc:
                    raise AnsibleError(self._transfer_hint("fetch %s from" % in_path, exc))
            if rc != 0:
                raise AnsibleError(self._transfer_error("read %s in" % in_path, rc, err))
            os.rename(b_tmp, b_out_path)
        except BaseException:
            try:
                os.unlink(b_tmp)
            except OSError:
                pass
            raise

    def _transfer(self, script, path, stdin=subprocess.PIPE, stdout=subprocess.PIPE):
        self._connect()
        return self._exec([SHELL, "-c", script, "sh", path], stdin=stdin, stdout=stdout)

    def _transfer_hint(self, what, exc):
        message = to_native(exc)
        if SHELL in message and "no such file" in message.lower():
            return ("cannot %s container %s: it has no %s (file transfers need %s and cat in the "
                    "container): %s" % (what, self._target.container_id, SHELL, SHELL, message))
        return "cannot %s container %s: %s" % (what, self._target.container_id, message)

    def _transfer_error(self, what, rc, err):
        text = to_native(err).strip()
        if rc == SHELL_NOT_FOUND:
            return ("cannot %s container %s: it has no cat (file transfers need %s and cat in the "
                    "container): %s" % (what, self._target.container_id, SHELL, text))
        return "cannot %s container %s (exit %d): %s" % (what, self._target.container_id, rc, text)

    def reset(self):
        self.close()

    def close(self):
        self._connected = False
