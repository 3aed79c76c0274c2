# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""User and group names to ids, from a root filesystem's /etc/passwd and /etc/group: for a bundle's
``user`` (spec.py) and for the connection plugin's ``remote_user``."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .errors import UserLookupError

if TYPE_CHECKING:
    from typing import Callable, Dict, List, Optional, Tuple

    # Reads a file of the root filesystem by its path relative to the root ("etc/passwd"); None
    # when it is not there.
    FileReader = Callable[[str], Optional[str]]

USER_RE = re.compile(r"^[^:\s]+(:[^:\s]+)?$")  # uid[:gid] or name[:group], either side a number or a name


def _table(text: Optional[str]) -> Dict[str, List[str]]:
    """name -> fields of an /etc/passwd or /etc/group text (the first entry of a name counts)."""
    rows: Dict[str, List[str]] = {}
    for line in (text or "").splitlines():
        fields = line.split(":")
        if len(fields) >= 4 and fields[0] and not line.startswith("#"):
            rows.setdefault(fields[0], fields)
    return rows


def _number(text: str, origin: str, user: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise UserLookupError("%s %r: /etc/passwd or /etc/group holds a non-numeric id %r"
                              % (origin, user, text))


def resolve_user(user: str, read_file: FileReader, origin: str = "user") -> Tuple[int, int]:
    """(uid, gid) of ``user``: ``uid``, ``uid:gid``, ``name`` or ``name:group``, either side a
    number or a name. Names are looked up in /etc/passwd and /etc/group through ``read_file``,
    which is only called when a name (or a uid's primary group) needs it. A user without a group
    gets its primary group from passwd, or 0 when passwd does not know it (as ``runc exec --user``
    and Docker do). ``root`` is uid 0 and gid 0 also where passwd or group has no entry for it.
    UserLookupError (a BundleError) names ``origin`` and what is wrong."""
    text = str(user).strip()
    if not USER_RE.match(text):
        raise UserLookupError("%s %r is not 'uid[:gid]' or 'name[:group]'" % (origin, user))
    name, dummy_sep, group = text.partition(":")
    passwd = None
    if name.isdigit():
        uid = int(name)
        if not group:
            passwd = _table(read_file("etc/passwd"))
        entry = next((f for f in (passwd or {}).values() if f[2] == name), None)
    else:
        passwd = _table(read_file("etc/passwd"))
        entry = passwd.get(name)
        if entry is None and name != "root":
            raise UserLookupError("%s %r: no such user in /etc/passwd" % (origin, user))
        uid = _number(entry[2], origin, user) if entry is not None else 0
    if not group:
        return uid, (_number(entry[3], origin, user) if entry is not None else 0)
    if group.isdigit():
        return uid, int(group)
    groups = _table(read_file("etc/group"))
    if group in groups:
        return uid, _number(groups[group][2], origin, user)
    if group == "root":
        return uid, 0
    raise UserLookupError("%s %r: no such group in /etc/group" % (origin, user))
