# Copyright (c) oci.runtime contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The steps a converger takes, as data: an Action is a verb, what it acts on and why; an
ActionLog holds a converge's actions in order and runs them unless in check mode.

Results list the actions as text (``str(action)``: ``"<verb>[ <target>][: <why>]"``, such as
``"stop"``, ``"update labels"``, ``"signal 15"``, ``"recreate: because bundle changed"``); the code
asks the log about verbs, never about the text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


class Action(NamedTuple):
    """One step: ``verb`` (start, stop, remove...), what it acts on, and why (both optional)."""

    verb: str
    target: str = ""
    why: str = ""

    def __str__(self) -> str:
        text = "%s %s" % (self.verb, self.target) if self.target else self.verb
        return "%s: %s" % (text, self.why) if self.why else text


class ActionLog(object):
    """The actions of one converge, in order. ``act`` records an action and, unless in check
    mode, runs it; ``note`` only records one (a step whose work is done elsewhere, or a plan)."""

    def __init__(self, check_mode: bool = False) -> None:
        self.check_mode = check_mode
        self._actions: list[Action] = []

    def note(self, verb: str, target: object = "", why: str = "") -> Action:
        action = Action(verb, str(target), why)
        self._actions.append(action)
        return action

    def act(self, verb: str, func: Callable[..., object], *args: object, target: object = "") -> None:
        self.note(verb, target)
        if not self.check_mode:
            func(*args)

    def has(self, *verbs: str) -> bool:
        """Whether any action has one of ``verbs``."""
        return any(action.verb in verbs for action in self._actions)

    def rendered(self) -> list[str]:
        """The actions as the module result lists them."""
        return [str(action) for action in self._actions]

    def __iter__(self) -> Iterator[Action]:
        return iter(self._actions)

    def __len__(self) -> int:
        return len(self._actions)
