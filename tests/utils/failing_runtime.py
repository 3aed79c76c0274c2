# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write a runtime wrapper that fails one call: the Nth call of one verb (create, start, pause,
kill, delete, checkpoint, restore, ...), then behaves exactly like the real runtime again.

The wrapper is a POSIX shell script (no Python start-up per call). It finds the verb as the first
argument that is neither a global option nor its value, counts the calls of the chosen verb in a
file next to itself, and on the Nth one prints a runtime-style JSON error to stderr and, when the
caller passed ``--log <file>`` (the shim does, for create/exec/restore), to that log as well, and
exits 1. Every other call is ``exec <real runtime> "$@"``.

    python failing_runtime.py <dest> <real-runtime> <verb> [<n>]
"""

from __future__ import annotations

import os
import shlex
import sys

TEMPLATE = """#!/bin/sh
# Fails call number {n} of '{verb}', then passes everything through to {real}.
verb= log= skip=
for arg in "$@"; do
    if [ -n "$skip" ]; then
        [ "$skip" = log ] && log=$arg
        skip=
        continue
    fi
    case "$arg" in
        --log) skip=log ;;
        --root|--log-format|--criu) skip=value ;;
        -*) ;;
        *) verb=$arg; break ;;
    esac
done
if [ "$verb" = {verb_q} ]; then
    count=$(cat {counter_q} 2>/dev/null || echo 0)
    count=$((count + 1))
    echo "$count" > {counter_q}
    if [ "$count" -eq {n} ]; then
        line='{{"level":"error","msg":"{message}","time":"2026-01-01T00:00:00Z"}}'
        [ -n "$log" ] && printf '%s\\n' "$line" >> "$log"
        printf '%s\\n' "$line" >&2
        exit 1
    fi
fi
exec {real_q} "$@"
"""


def message_for(verb, n=1):
    """The error the wrapper injects: tests look for it in the module's message."""
    return "injected failure of %s (call %d)" % (verb, n)


def write_failing_runtime(dest, real, verb, n=1):
    """Write the wrapper to ``dest`` (mode 0755); returns ``dest``. Its call counter is
    ``dest + '.count'``."""
    if not os.path.isabs(real) or not os.access(real, os.X_OK):
        raise ValueError("the real runtime must be an absolute path to an executable: %r" % real)
    text = TEMPLATE.format(n=int(n), verb=verb, verb_q=shlex.quote(verb), real=real,
                           real_q=shlex.quote(real), counter_q=shlex.quote(dest + ".count"),
                           message=message_for(verb, n))
    with open(dest, "w") as handle:
        handle.write(text)
    os.chmod(dest, 0o755)
    return dest


def calls(dest):
    """How often the wrapper saw its verb so far."""
    try:
        with open(dest + ".count") as handle:
            return int(handle.read().strip() or 0)
    except OSError:
        return 0


if __name__ == "__main__":
    if len(sys.argv) not in (4, 5):
        sys.stderr.write(__doc__)
        sys.exit(2)
    write_failing_runtime(sys.argv[1], sys.argv[2], sys.argv[3],
                          int(sys.argv[4]) if len(sys.argv) == 5 else 1)
