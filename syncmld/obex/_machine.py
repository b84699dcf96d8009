"""Pieces shared by the OBEX server and client state machines.

Both machines keep their transitions in a table
``(state, input) -> Transition(action, next states)``.  An action returns an
:class:`Outcome` which picks the next state from the transition:

* ``DONE``  - the normal next state (``Transition.done``);
* ``MORE``  - a multi-packet exchange continues (``Transition.more``);
* ``ABORTED`` - the client replaced the next packet with ABORT
  (``Transition.aborted``).

An action may instead raise :class:`Refusal` (server only): the request is
answered with the refusal's response code and the machine moves to
``Transition.refused``.  Or it raises :class:`Fatal` (client only): the
peer broke the protocol in a way only the action can see (Continue after
our last packet, a body above the limit) and the machine closes, as for a
missing table entry.  Any other combination (an outcome or refusal the
table has no state for) is a bug in the table and raises ``AssertionError``.
"""

from __future__ import annotations

from enum import Enum, auto
from typing import Generic, NamedTuple, TypeVar

from syncmld.obex.packets import ResponseCode

S = TypeVar("S", bound=Enum)
A = TypeVar("A", bound=Enum)


class Outcome(Enum):
    """What an action did, selecting the next state."""

    DONE = auto()
    MORE = auto()
    ABORTED = auto()


class Transition(NamedTuple, Generic[A, S]):
    """One table entry: the action to run and the states it may lead to."""

    action: A
    done: S
    more: S | None = None
    refused: S | None = None
    aborted: S | None = None

    def next_state(self, outcome: Outcome) -> S:
        """The state for ``outcome`` (``AssertionError`` if the table has none)."""
        if outcome is Outcome.DONE:
            return self.done
        state = self.more if outcome is Outcome.MORE else self.aborted
        assert state is not None, f"{self.action} gave {outcome} the table does not allow"
        return state


class Refusal(Exception):
    """Raised by a server action to refuse the current request with ``code``."""

    def __init__(self, code: ResponseCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Fatal(Exception):
    """Raised by a client action when the server's response cannot be continued from."""

    def __init__(self, code: ResponseCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
