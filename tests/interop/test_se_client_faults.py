"""SyncEvolution 2.0 as the client: the HTTP connection dropped after each message in turn.

Both sides are in sync, then both edit (an add, an edit and a delete each);
the next session loses its connection at the n-th request, either before
our server has seen the message or after it has handled it (the answer is
lost).  SyncEvolution gives up on that session; the following one must
complete and leave both sides equal, with every edit kept and nothing
duplicated.  A deletion may come back: after a broken session SyncEvolution
recovers with a slow sync, which merges instead of deleting.

One case fails today for a reason found here, marked with it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web

from syncmld.transports.http import HttpServer, make_app
from tests.interop.conftest import Ours
from tests.interop.harness import SeClient, Shims, canonical_set, make_item
from tests.interop.scenario import FileSide, StoreSide

pytestmark = [pytest.mark.external, pytest.mark.slow]

CONTACTS = {"addressbook": "contacts"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Dropper:
    """An aiohttp middleware that drops the connection of one chosen request."""

    def __init__(self) -> None:
        self.count = 0
        self.drop_at: int | None = None
        self.after = False

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.count += 1
        if self.count != self.drop_at:
            return await handler(request)
        if self.after:
            await handler(request)  # handled, but the answer never leaves
        assert request.transport is not None
        request.transport.abort()
        raise ConnectionResetError("connection dropped by the test")


def numbers(texts: list[str]) -> Counter[int]:
    """How often each item number occurs (a number twice = a duplicate)."""
    return Counter(int(m.group(1)) for t in texts for m in [re.search(r"Tester(\d+)", t)] if m)


RESENT_DELETE = pytest.mark.xfail(
    strict=True,
    reason=(
        "the Map request is lost after SyncEvolution applied our pkg4; the resumed session "
        "sends the unconfirmed Delete again, SyncEvolution finds the file already gone, "
        "reports a local 404 and ends the (otherwise converged) session with 22001"
    ),
)
CASES = [
    pytest.param(1, False, id="1-before-handling"),
    pytest.param(1, True, id="1-answer-lost"),
    pytest.param(2, False, id="2-before-handling"),
    pytest.param(2, True, id="2-answer-lost"),
    pytest.param(3, False, id="3-before-handling", marks=RESENT_DELETE),
    pytest.param(3, True, id="3-answer-lost"),
]


@pytest.mark.parametrize(("drop_at", "after"), CASES)
async def test_dropped_connection_then_next_sync_converges(
    ours: Ours, shims: Shims, tmp_path: Path, drop_at: int, after: bool
) -> None:
    dropper = Dropper()
    app = make_app(ours.config, ours.repo)
    app.middlewares.append(dropper.middleware)
    tag = "fault"
    async with HttpServer(app, port=0) as http:
        client = SeClient(tmp_path / "se", shims, url=http.url, device_id="se-fault", uris=CONTACTS)
        client.configure()
        mine = FileSide("SyncEvolution's", {"addressbook": client.data("addressbook")})
        theirs = StoreSide("our", ours.stores)
        for n in range(3):
            mine.put("addressbook", f"c{n}", make_item("addressbook", tag, n))
            theirs.put("addressbook", f"s{n}", make_item("addressbook", tag, 100 + n))
        first = await client.sync("slow")
        assert first.ok, first.describe()

        mine.put("addressbook", "c0", make_item("addressbook", tag, 0, "edited on the client"))
        mine.delete("addressbook", "c1")
        mine.put("addressbook", "c5", make_item("addressbook", tag, 5))
        theirs.put("addressbook", "s0", make_item("addressbook", tag, 100, "edited on the server"))
        theirs.delete("addressbook", "s1")
        theirs.put("addressbook", "s5", make_item("addressbook", tag, 105))

        dropper.count, dropper.drop_at, dropper.after = 0, drop_at, after
        broken = await client.sync("two-way")
        dropped = dropper.count >= drop_at
        dropper.drop_at = None
        assert dropped, f"the session had only {dropper.count} requests"
        assert not broken.ok

        recovery = await client.sync("two-way")
        assert recovery.ok, recovery.describe()
        check = await client.sync("two-way")  # and the state both committed agrees
        assert check.ok, check.describe()

    ours_now = canonical_set(theirs.texts("addressbook"))
    mine_now = canonical_set(mine.texts("addressbook"))
    assert ours_now == mine_now
    counts = numbers(ours_now)
    assert max(counts.values()) == 1, f"duplicates: {counts}"
    # Every surviving edit and addition is there; deletions may have come back.
    for n, version in ((0, "edited on the client"), (100, "edited on the server")):
        assert canonical_set([make_item("addressbook", tag, n, version)])[0] in ours_now
    for n in (2, 5, 102, 105):
        assert canonical_set([make_item("addressbook", tag, n)])[0] in ours_now
    assert set(counts) <= {0, 1, 2, 5, 100, 101, 102, 105}


async def test_second_slow_sync_keeps_server_items_single(
    ours: Ours, shims: Shims, tmp_path: Path
) -> None:
    async with HttpServer(make_app(ours.config, ours.repo), port=0) as http:
        client = SeClient(tmp_path / "se", shims, url=http.url, device_id="se-slow2", uris=CONTACTS)
        client.configure()
        FileSide("SyncEvolution's", {"addressbook": client.data("addressbook")}).put(
            "addressbook", "c0", make_item("addressbook", "slow2", 0)
        )
        ours.stores["addressbook"].add(make_item("addressbook", "slow2", 100))
        for _ in range(2):
            result = await client.sync("slow")
            assert result.ok, result.describe()
    want = canonical_set(make_item("addressbook", "slow2", n) for n in (0, 100))
    assert canonical_set(ours.texts("addressbook")) == want
    assert canonical_set(client.items("addressbook").values()) == want
