"""syncmld as the client, SyncEvolution 2.0's HTTP server as the server: the six sync modes.

SyncEvolution's server runs as in a desktop session, on a private bus:
``dbus-daemon``, ``syncevo-dbus-server`` (one ``syncevo-dbus-helper`` per
session) and its Twisted HTTP front end on 127.0.0.1.  Our client syncs
contacts, events, tasks and memos with its ``addressbook``, ``calendar``,
``todo`` and ``memo`` file datastores through all six modes
(:meth:`~tests.interop.scenario.Scenario.run_six_modes`), in XML with SyncML
1.2 and in WBXML with SyncML 1.1.

SyncEvolution's server does not keep its own changes that a
one-way-from-client session left unsent: an item edited on its side before
such a session is not sent in the next one-way-from-server session either
(its file backend's change tracking takes the end of every session as the new
baseline).  The model expects exactly that.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from syncmld.protocol.codec import Encoding
from syncmld.protocol.codes import SyncMode
from tests.interop.conftest import OurClient, Ours
from tests.interop.harness import SE_STORES, SeServer, Shims, missing_server
from tests.interop.scenario import FileSide, Scenario, StoreSide

pytestmark = [pytest.mark.external, pytest.mark.slow]


@pytest.fixture
def se_server(shims: Shims, tmp_path: Path) -> Iterator[SeServer]:
    """SyncEvolution's HTTP server with empty datastores, our device id registered."""
    reason = missing_server()
    if reason:
        pytest.skip(reason)
    server = SeServer(tmp_path / "se-server", preload=(shims.nosleep,))
    server.configure()
    server.add_client("syncmld-interop")
    with server:
        yield server


@pytest.mark.parametrize(
    ("encoding", "version"),
    [(Encoding.XML, "1.2"), (Encoding.WBXML, "1.1")],
    ids=["xml-1.2", "wbxml-1.1"],
)
async def test_six_modes_against_syncevolution_server(
    se_server: SeServer, ours: Ours, encoding: Encoding, version: str
) -> None:
    client = OurClient(se_server.url, ours.stores, ours.repo, encoding=encoding, version=version)

    async def sync(mode: str) -> str:
        outcome = await client.sync(SyncMode(mode))
        run = outcome.run
        assert run.status == 200, f"{mode}: {run.status} {run.message}"
        assert all(s.status == 200 for s in run.stores), f"{mode}: {run.stores}"
        assert outcome.peer is not None
        return f"server logs in {se_server.home / '.cache/syncevolution'}"

    server_side = FileSide("SyncEvolution's", {s: se_server.data(s) for s in SE_STORES})
    scenario = Scenario(
        StoreSide("our", ours.stores),
        server_side,
        f"ours{encoding.name}",
        sync,
        server_forgets_unsent=True,
    )
    await scenario.run_six_modes()
