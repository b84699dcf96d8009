"""SyncEvolution 2.0 as the client, syncmld as the server: the six sync modes.

For each transport (HTTP, OBEX over TCP), encoding (XML, WBXML) and SyncML
version (1.1, 1.2), one SyncEvolution client syncs its four datastores
(contacts, events, tasks, memos) with our server through all six modes in a
row, with edits on both sides before each sync, then once more two-way with
nothing changed (:meth:`~tests.interop.scenario.Scenario.run_six_modes`).
After every sync both sides must hold exactly the items the mode implies.

Size: 3-6 items per datastore, four datastores per session, seven sessions
per combination (about 4 s each).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from syncmld.transports.http import HttpServer, make_app
from syncmld.transports.obex import ObexTcpServer
from tests.interop.conftest import OUR_NAMES, Ours, settle
from tests.interop.harness import SE_STORES, SeClient, Shims
from tests.interop.scenario import FileSide, Scenario, StoreSide

pytestmark = [pytest.mark.external, pytest.mark.slow]

COMBINATIONS = list(itertools.product(("http", "obex"), ("xml", "wbxml"), ("1.1", "1.2")))


@pytest.fixture
async def endpoint(request: pytest.FixtureRequest, ours: Ours) -> AsyncIterator[str]:
    """The URL SyncEvolution is pointed at: our HTTP server or our OBEX/TCP listener."""
    if request.param == "http":
        async with HttpServer(make_app(ours.config, ours.repo), port=0) as http:
            yield http.url
    else:
        async with ObexTcpServer(ours.config, ours.repo, port=0) as obex:
            yield f"obex-tcp://127.0.0.1:{obex.port}"
            await settle(obex)


def se_client(root: Path, shims: Shims, url: str, tag: str, wire: tuple[str, str]) -> SeClient:
    """A configured SyncEvolution client syncing all four datastores with ours."""
    encoding, version = wire
    client = SeClient(
        root,
        shims,
        url=url,
        device_id=f"se-{tag}",
        uris=OUR_NAMES,
        encoding=encoding,
        version=version,
    )
    client.configure()
    return client


def se_side(client: SeClient) -> FileSide:
    return FileSide("SyncEvolution's", {s: client.data(s) for s in SE_STORES})


@pytest.mark.parametrize(
    ("endpoint", "wire"),
    [(t, (e, v)) for t, e, v in COMBINATIONS],
    ids=[f"{t}-{e}-{v}" for t, e, v in COMBINATIONS],
    indirect=["endpoint"],
)
async def test_six_modes(
    endpoint: str, wire: tuple[str, str], ours: Ours, shims: Shims, tmp_path: Path
) -> None:
    encoding, version = wire
    transport = "obex" if endpoint.startswith("obex") else "http"
    tag = f"{transport}{encoding}{version.replace('.', '')}"
    client = se_client(tmp_path / "se", shims, endpoint, tag, wire)

    async def sync(mode: str) -> str:
        result = await client.sync(mode)
        assert result.ok, f"{mode}: {result.describe()}"
        return str(result.session_dir)

    scenario = Scenario(se_side(client), StoreSide("our", ours.stores), tag, sync)
    await scenario.run_six_modes()
