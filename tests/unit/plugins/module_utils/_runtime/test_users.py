# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""users.py: user and group names to ids, as a bundle's user and the connection's remote_user
resolve them, from passwd and group texts (no root filesystem)."""

from __future__ import annotations

import pytest

from ansible_collections.oci.runtime.plugins.module_utils._runtime.errors import BundleError, UserLookupError
from ansible_collections.oci.runtime.plugins.module_utils._runtime.users import resolve_user

PASSWD = """\
root:x:0:0:root:/root:/bin/sh
# a comment
app:x:1000:1001:app:/home/app:/bin/sh
svc:x:999:999::/:/usr/sbin/nologin
weird:x:abc:0::/:/bin/sh
app:x:2000:2000:a second entry does not count:/:/bin/sh
"""
GROUP = "root:x:0:\nstaff:x:50:app\napp:x:1001:\n"


def files(passwd=PASSWD, group=GROUP):
    """read_file over two texts (None: the file is missing); ``.calls`` lists what was read."""
    table = {"etc/passwd": passwd, "etc/group": group}
    calls = []

    def read(path):
        calls.append(path)
        return table.get(path)
    read.calls = calls
    return read


@pytest.mark.parametrize("user, expected, reads", [
    ("0:0", (0, 0), []),                       # numbers need no lookup
    ("1000:50", (1000, 50), []),
    ("0", (0, 0), ["etc/passwd"]),
    ("1000", (1000, 1001), ["etc/passwd"]),    # primary group from passwd
    ("4242", (4242, 0), ["etc/passwd"]),       # unknown uid: group 0, as runc exec --user does
    ("app", (1000, 1001), ["etc/passwd"]),
    (" app ", (1000, 1001), ["etc/passwd"]),
    ("app:staff", (1000, 50), ["etc/passwd", "etc/group"]),
    ("app:7", (1000, 7), ["etc/passwd"]),
    ("app:0", (1000, 0), ["etc/passwd"]),
    ("svc:root", (999, 0), ["etc/passwd", "etc/group"]),
    ("1000:staff", (1000, 50), ["etc/group"]),
    ("root", (0, 0), ["etc/passwd"]),
])
def test_resolve_user(user, expected, reads):
    read = files()
    assert resolve_user(user, read) == expected
    assert sorted(set(read.calls)) == sorted(reads)


@pytest.mark.parametrize("passwd, group", [(None, None), ("", ""), ("app:x:1000:1001::/:/bin/sh\n", "app:x:1001:\n")])
def test_root_is_0_0_without_an_entry(passwd, group):
    """A root filesystem without /etc/passwd (or without root in it) still has root: uid 0, gid 0,
    for a bundle's user as for the connection's remote_user."""
    for user in ("root", "root:root", "0", "0:root"):
        assert resolve_user(user, files(passwd, group)) == (0, 0), user


def test_without_passwd_a_uid_gets_group_0_and_a_name_fails():
    assert resolve_user("1000", files(passwd=None)) == (1000, 0)
    with pytest.raises(UserLookupError):
        resolve_user("app", files(passwd=None))


@pytest.mark.parametrize("user, words", [
    ("nobody", "no such user in /etc/passwd"),
    ("app:wheel", "no such group in /etc/group"),
    ("weird", "non-numeric id 'abc'"),
    ("", "is not 'uid[:gid]' or 'name[:group]'"),
    ("app:", "is not 'uid[:gid]' or 'name[:group]'"),
    ("a b", "is not 'uid[:gid]' or 'name[:group]'"),
    ("a:b:c", "is not 'uid[:gid]' or 'name[:group]'"),
])
def test_resolve_user_refuses(user, words):
    with pytest.raises(UserLookupError) as info:
        resolve_user(user, files(), origin="the image's User")
    assert info.value.msg.startswith("the image's User %r" % user)
    assert words in info.value.msg
    assert isinstance(info.value, BundleError)  # a bundle's user that cannot be resolved
