"""SyncEvolution 2.0 as the client against syncmld's server: sizes, authentication, devices.

* Multi-message packages and large objects: both sides announce a small
  MaxMsgSize, so every package spans several messages and a contact with a
  20 KB photo travels in MoreData chunks - up over HTTP (XML), down to a
  second SyncEvolution over OBEX/TCP (WBXML).
* MD5 authentication (``syncml:auth-md5``), a wrong password (the session
  fails cleanly: nothing stored changes on either side, our history records
  why) and an unknown device.

An unknown device is one whose device id our server has no state for.  The
accounts in ``[accounts]`` are per user, not per device, so such a device is
served when its credentials are right - but whatever anchors it presents,
its first session is a slow sync (508, then Alert 201) that matches items by
content, so nothing is duplicated, and the state kept for other devices is
not touched.
"""

from __future__ import annotations

import base64
import random
import shutil
from pathlib import Path

import pytest

from syncmld.engine.server import ServerConfig
from syncmld.engine.session import AuthMode
from syncmld.protocol.codes import AlertCode
from syncmld.transports.http import HttpServer, make_app
from syncmld.transports.obex import ObexTcpServer
from tests.interop.conftest import OUR_NAMES, Ours, server_config, settle
from tests.interop.harness import SeClient, Shims, canonical_set, make_item, vcard

pytestmark = [pytest.mark.external, pytest.mark.slow]

CONTACTS = {"addressbook": "contacts"}


def photo(size: int) -> str:
    """Base64 of ``size`` pseudo-random bytes (incompressible, like a JPEG)."""
    rng = random.Random(size)
    return base64.b64encode(bytes(rng.getrandbits(8) for _ in range(size))).decode()


def messages(result_dir: Path | None) -> int:
    """How many messages a SyncEvolution session log shows (sent and received)."""
    assert result_dir is not None
    return len(list(result_dir.glob("syncevolution-log_trm*")))


def our_contacts(ours: Ours) -> list[str]:
    return canonical_set(ours.texts("addressbook"))


async def test_multi_message_packages_and_a_large_object(
    ours: Ours, shims: Shims, tmp_path: Path
) -> None:
    config = ServerConfig(
        datastores=ours.config.datastores,
        auth=ours.config.auth,
        passwords=ours.config.passwords,
        max_msg_size=6000,
    )
    big = vcard("big", 99, photo=photo(20_000))
    assert len(big) > 26_000
    uploader = SeClient(
        tmp_path / "up",
        shims,
        url="",
        device_id="se-uploader",
        uris=CONTACTS,
        max_msg_size=6000,
    )
    async with HttpServer(make_app(config, ours.repo), port=0) as http:
        uploader.url = http.url
        uploader.configure()
        for n in range(30):
            (uploader.data("addressbook") / f"c{n}").write_text(vcard("multi", n))
        (uploader.data("addressbook") / "big").write_text(big)
        up = await uploader.sync("slow")
        assert up.ok, up.describe()
    want = canonical_set(uploader.items("addressbook").values())
    assert len(want) == 31
    assert our_contacts(ours) == want
    assert messages(up.session_dir) >= 8, "the upload should take several messages"

    downloader = SeClient(
        tmp_path / "down",
        shims,
        url="",
        device_id="se-downloader",
        uris=CONTACTS,
        encoding="wbxml",
        max_msg_size=6000,
    )
    async with ObexTcpServer(config, ours.repo, port=0) as obex:
        downloader.url = f"obex-tcp://127.0.0.1:{obex.port}"
        downloader.configure()
        down = await downloader.sync("slow")
        await settle(obex)
        assert down.ok, down.describe()
    assert canonical_set(downloader.items("addressbook").values()) == want
    assert messages(down.session_dir) >= 8, "the download should take several messages"
    # The photo arrived whole (normalization would hide nothing of it).
    assert any(
        photo(20_000)[:64] in t.replace("\r\n ", "").replace("\n ", "")
        for t in downloader.items("addressbook").values()
    )


async def test_md5_authentication(ours: Ours, shims: Shims, tmp_path: Path) -> None:
    config = server_config(ours.stores, AuthMode.MD5)
    async with HttpServer(make_app(config, ours.repo), port=0) as http:
        client = SeClient(
            tmp_path / "se", shims, url=http.url, device_id="se-md5", uris=CONTACTS, auth="md5"
        )
        client.configure()
        (client.data("addressbook") / "c0").write_text(vcard("md5", 0))
        first = await client.sync("two-way")
        assert first.ok, first.describe()
        ours.stores["addressbook"].add(vcard("md5", 1))
        second = await client.sync("two-way")  # the nonce of the first session is used
        assert second.ok, second.describe()
    assert our_contacts(ours) == canonical_set([vcard("md5", 0), vcard("md5", 1)])
    assert canonical_set(client.items("addressbook").values()) == our_contacts(ours)
    runs = ours.repo.history("se-md5")
    assert [r.status for r in runs] == [200, 200]
    assert runs[0].stores[0].mode == AlertCode.TWO_WAY


@pytest.mark.parametrize("auth", [AuthMode.BASIC, AuthMode.MD5])
async def test_wrong_password_fails_cleanly(
    ours: Ours, shims: Shims, tmp_path: Path, auth: AuthMode
) -> None:
    config = server_config(ours.stores, auth)
    ours.stores["addressbook"].add(vcard("theirs", 1))
    async with HttpServer(make_app(config, ours.repo), port=0) as http:
        client = SeClient(
            tmp_path / "se",
            shims,
            url=http.url,
            device_id="se-wrong",
            uris=CONTACTS,
            password="not the password",
            auth=auth.value,
        )
        client.configure()
        (client.data("addressbook") / "c0").write_text(vcard("mine", 0))
        result = await client.sync("slow")
    assert not result.ok
    assert "401" in result.status or "401" in result.output, result.describe()
    # Nothing changed on either side.
    assert our_contacts(ours) == canonical_set([vcard("theirs", 1)])
    assert list(client.items("addressbook")) == ["c0"]
    assert ours.repo.load_peer("se-wrong") is None
    # SyncEvolution retries with a new session after the 401; each attempt is
    # recorded as a failure, the last with the reason.
    runs = ours.repo.history("se-wrong")
    assert runs and all(r.status != 200 for r in runs)
    assert runs[0].status == 401
    assert "authentication failed" in runs[0].message


async def test_unknown_device_gets_a_slow_sync_without_duplicates(
    ours: Ours, shims: Shims, tmp_path: Path
) -> None:
    async with HttpServer(make_app(ours.config, ours.repo), port=0) as http:
        known = SeClient(tmp_path / "a", shims, url=http.url, device_id="se-known", uris=CONTACTS)
        known.configure()
        for n in range(3):
            (known.data("addressbook") / f"c{n}").write_text(vcard("dev", n))
        first = await known.sync("slow")
        assert first.ok, first.describe()

        # A second device that looks like the first one - same data, same
        # sync anchors (its configuration was copied) - but another device id.
        shutil.copytree(tmp_path / "a", tmp_path / "b", symlinks=True)
        stranger = SeClient(
            tmp_path / "b", shims, url=http.url, device_id="se-stranger", uris=CONTACTS
        )
        stranger.configure()
        (stranger.data("addressbook") / "c9").write_text(vcard("dev", 9))
        second = await stranger.sync("two-way")
        assert second.ok, second.describe()

        # The known device is unaffected: its next sync is still two-way.
        third = await known.sync("two-way")
        assert third.ok, third.describe()

    stranger_runs = ours.repo.history("se-stranger")
    assert stranger_runs[0].status == 200
    assert stranger_runs[0].stores[0].mode == AlertCode.SLOW_SYNC
    known_runs = ours.repo.history("se-known")
    assert [r.stores[0].mode for r in known_runs] == [AlertCode.TWO_WAY, AlertCode.SLOW_SYNC]
    want = canonical_set(make_item("addressbook", "dev", n) for n in (0, 1, 2, 9))
    assert our_contacts(ours) == want  # matched, not duplicated
    assert canonical_set(stranger.items("addressbook").values()) == want
    assert canonical_set(known.items("addressbook").values()) == want
    assert OUR_NAMES["addressbook"] == "contacts"
