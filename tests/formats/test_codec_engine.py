"""Our client (a phone speaking vCard 2.1) against our server (a desktop vCard 3.0 store).

The client's store holds vCard 2.1 and uses the identity codec, as a phone
does; the server's store holds vCard 3.0 behind the format-converting codec.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from syncmld.engine.client import ClientConfig, ClientSession, ClientStore
from syncmld.engine.items import PlainCodec
from syncmld.engine.server import ServerConfig, ServerSession
from syncmld.engine.session import Datastore, SessionFinished
from syncmld.engine.state import PeerState, StoreCounts
from syncmld.engine.store import VCARD_21, VCARD_30, MemoryStore
from syncmld.formats.codec import FormatCodec
from syncmld.formats.vcard import parse_component, unescape30
from syncmld.protocol.codes import SyncMode

PHONE_CARDS = [
    ("BEGIN:VCARD\r\nVERSION:2.1\r\nN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:M=C3=BCller;J=C3="
     "BCrgen\r\nTEL;CELL:+4917000001\r\nEMAIL;INTERNET:j@example.de\r\nEND:VCARD\r\n"),
    ("BEGIN:VCARD\r\nVERSION:2.1\r\nN:Petrov;Ivan\r\nFN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:"
     "=D0=98=D0=B2=D0=B0=D0=BD\r\nTEL;HOME;VOICE:+7495000002\r\nEND:VCARD\r\n"),
    ("BEGIN:VCARD\r\nVERSION:2.1\r\nN:Tanaka;Yuki\r\nNOTE;ENCODING=QUOTED-PRINTABLE;CHARSET=UTF-8:"
     "=E6=97=A5=E6=9C=AC=0D=0Asecond line\r\nTEL;WORK:+8130000003\r\nEND:VCARD\r\n"),
]


@dataclass
class PhoneAndDesktop:
    desktop: MemoryStore = field(default_factory=lambda: MemoryStore(content_types=(VCARD_30,)))
    phone: MemoryStore = field(default_factory=lambda: MemoryStore(content_types=(VCARD_21,)))
    server_states: dict[str, PeerState] = field(default_factory=dict)
    client_state: PeerState | None = None
    now: float = 1_700_000_000.0

    def sync(self) -> tuple[StoreCounts, StoreCounts]:
        self.now += 60
        server = ServerSession(
            ServerConfig(datastores=(Datastore(name="contacts", store=self.desktop,
                                               codec=FormatCodec("contacts")),)),
            load_peer=self.server_states.get, now=self.now,
        )
        client = ClientSession(
            ClientConfig(
                url="http://127.0.0.1/sync", dev_id="phone-1",
                stores=(ClientStore(
                    datastore=Datastore(name="card", store=self.phone,
                                        codec=PlainCodec(VCARD_21)),
                    remote_uri="contacts", mode=SyncMode.TWO_WAY),),
                user="u", password="p",
            ),
            peer=self.client_state, now=self.now, session_id=str(int(self.now) % 10000),
        )
        data: bytes | None = client.start()
        while data is not None:
            reply = server.receive(data)
            data = client.receive(reply.data).data
        assert client.result is not None and server.result is not None
        finished: list[SessionFinished] = [client.result, server.result]
        assert all(f.run.status == 200 and f.peer is not None for f in finished), finished
        assert client.result.peer is not None and server.result.peer is not None
        self.client_state = client.result.peer
        self.server_states[server.result.peer.dev_id] = server.result.peer
        return client.result.run.stores[0], server.result.run.stores[0]


def _values(store: MemoryStore, name: str) -> list[str]:
    out = []
    for text in store.values():
        out += [unescape30(p.decoded()) for p in parse_component(text).get_all(name)]
    return sorted(out)


def test_phone_21_lands_as_30_and_a_second_sync_changes_nothing() -> None:
    pair = PhoneAndDesktop()
    for card in PHONE_CARDS:
        pair.phone.add(card)
    _, server = pair.sync()
    assert server.local_added == 3
    stored = pair.desktop.values()
    assert all("VERSION:3.0" in s and "QUOTED-PRINTABLE" not in s for s in stored)
    assert _values(pair.desktop, "N") == ["Müller;Jürgen", "Petrov;Ivan", "Tanaka;Yuki"]
    assert "Иван" in _values(pair.desktop, "FN")
    assert "日本\nsecond line" in _values(pair.desktop, "NOTE")
    before = {i: pair.desktop.get(i) for i, _ in pair.desktop.list()}
    phone_before = {i: pair.phone.get(i) for i, _ in pair.phone.list()}

    client, server = pair.sync()
    assert (server.local_added, server.local_replaced, server.local_deleted) == (0, 0, 0)
    assert (server.remote_added, server.remote_replaced, server.remote_deleted) == (0, 0, 0)
    assert (client.local_added, client.local_replaced) == (0, 0)
    assert {i: pair.desktop.get(i) for i, _ in pair.desktop.list()} == before
    assert {i: pair.phone.get(i) for i, _ in pair.phone.list()} == phone_before


def test_phone_edit_keeps_desktop_only_fields() -> None:
    pair = PhoneAndDesktop()
    phone_id, _ = pair.phone.add(PHONE_CARDS[0])
    pair.sync()
    ((desk_id, _),) = pair.desktop.list()
    text, _ = pair.desktop.get(desk_id)
    pair.desktop.edit(desk_id, text.replace("END:VCARD", "NOTE:met at FOSDEM\r\n"
                                            "URL:https://example.de/j\r\nEND:VCARD"))
    client, server = pair.sync()  # the desktop edit reaches the phone
    assert server.remote_replaced == 1
    phone_text, _ = pair.phone.get(phone_id)
    assert "NOTE:met at FOSDEM" in phone_text and "VERSION:2.1" in phone_text
    # A phone that cannot store notes or URLs sends its edit without them.
    lines = [line for line in phone_text.split("\r\n") if not line.startswith(("NOTE", "URL"))]
    pair.phone.edit(phone_id, "\r\n".join(lines).replace("+4917000001", "+4917099999"))
    _, server = pair.sync()
    assert server.local_replaced == 1
    assert _values(pair.desktop, "TEL") == ["+4917099999"]
    assert _values(pair.desktop, "NOTE") == ["met at FOSDEM"]
    assert _values(pair.desktop, "URL") == ["https://example.de/j"]
    client, server = pair.sync()
    assert (server.local_replaced, server.remote_replaced, client.local_replaced) == (0, 0, 0)


def test_a_desktop_item_that_cannot_be_converted_does_not_stop_the_others() -> None:
    pair = PhoneAndDesktop()
    pair.desktop.add("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:ok-1\r\nN:Good;Item;;;\r\nFN:Good Item\r\n"
                     "END:VCARD\r\n")
    pair.desktop.add("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:bad-1\r\nN:Broken\r\n")  # no END
    client, server = pair.sync()
    assert client.local_added == 1
    assert "not sent" in server.message
    (text,) = pair.phone.values()
    assert "VERSION:2.1" in text and "N:Good;Item" in text
