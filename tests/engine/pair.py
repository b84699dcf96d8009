"""Our client and our server wired back to back in one process (no sockets).

Like h11's ConnectionPair: every message one side produces is decoded by the
other.  States are kept in dicts standing in for the state database, and are
only replaced when a session hands over a committed state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from syncmld.engine.client import ClientConfig, ClientSession, ClientStore
from syncmld.engine.items import ItemCodec
from syncmld.engine.server import ServerConfig, ServerSession
from syncmld.engine.session import AuthMode, Datastore, Event, SessionFinished
from syncmld.engine.state import PeerState
from syncmld.engine.store import VCARD_30, MemoryStore
from syncmld.protocol.codec import Encoding
from syncmld.protocol.codes import SyncMode

URL = "http://127.0.0.1/sync"


def vcard(n: int, name: str | None = None, extra: str = "") -> str:
    """A small vCard 3.0 with a UID."""
    name = name or f"Person{n}"
    return (
        "BEGIN:VCARD\r\nVERSION:3.0\r\n"
        f"UID:uid-{n}\r\nN:{name};John;;;\r\nFN:John {name}\r\n"
        f"TEL;TYPE=CELL:+4915100{n:05d}\r\n{extra}END:VCARD\r\n"
    )


@dataclass
class Outcome:
    """What one session did."""

    client: SessionFinished
    server: SessionFinished | None
    messages: int
    client_events: list[Event] = field(default_factory=list)
    server_events: list[Event] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.client.run.status == 200 and (
            self.server is not None and self.server.run.status == 200
        )


@dataclass
class Pair:
    """A desktop (server) and a device (client), with their stores and state."""

    server_store: MemoryStore = field(
        default_factory=lambda: MemoryStore(content_types=(VCARD_30,))
    )
    client_store: MemoryStore = field(
        default_factory=lambda: MemoryStore(content_types=(VCARD_30,))
    )
    server_states: dict[str, PeerState] = field(default_factory=dict)
    client_state: PeerState | None = None
    encoding: Encoding = Encoding.XML
    version: str = "1.2"
    auth: AuthMode = AuthMode.NONE
    passwords: dict[str, str] = field(default_factory=lambda: {"test": "secret"})
    user: str | None = "test"
    password: str | None = "secret"
    client_auth: str = "basic"
    client_max_msg: int = 1_000_000
    server_max_msg: int = 1_000_000
    now: float = 1_700_000_000.0
    #: The server datastore's codec (default: the identity on the store's type).
    server_codec: ItemCodec | None = None
    #: Every message the server sent in the last session.
    server_replies: list[bytes] = field(default_factory=list)

    def sync(
        self,
        mode: SyncMode = SyncMode.TWO_WAY,
        *,
        cut_after: int | None = None,
        tamper: Callable[[int, bytes], bytes] | None = None,
        server_alerted: bool = False,
    ) -> Outcome:
        """Run one session; ``cut_after`` drops the connection after that many messages."""
        self.now += 60
        server = ServerSession(
            ServerConfig(
                datastores=(
                    Datastore(name="contacts", store=self.server_store, codec=self.server_codec),
                ),
                auth=self.auth,
                passwords=self.passwords,
                max_msg_size=self.server_max_msg,
            ),
            load_peer=self.server_states.get,
            now=self.now,
        )
        client = ClientSession(
            ClientConfig(
                url=URL,
                dev_id="device-1",
                stores=(
                    ClientStore(
                        datastore=Datastore(name="card", store=self.client_store),
                        remote_uri="contacts",
                        mode=mode,
                    ),
                ),
                user=self.user,
                password=self.password,
                auth=self.client_auth,
                version=self.version,
                encoding=self.encoding,
                max_msg_size=self.client_max_msg,
                server_alerted=server_alerted,
            ),
            peer=self.client_state,
            now=self.now,
            session_id=str(int(self.now) % 10000),
        )
        count = 0
        self.server_replies = []
        cevents: list[Event] = []
        sevents: list[Event] = []
        data: bytes | None = client.start()
        while data is not None:
            count += 1
            if tamper is not None:
                data = tamper(count, data)
            if cut_after is not None and count > cut_after:
                break
            reply = server.receive(data)
            self.server_replies.append(reply.data)
            sevents.extend(reply.events)
            count += 1
            if cut_after is not None and count > cut_after:
                break
            result = client.receive(reply.data)
            cevents.extend(result.events)
            data = result.data
        if not client.done:
            client.abort("connection lost")
        if not server.done:
            server.abort("connection lost")
        assert client.result is not None
        if client.result.peer is not None:
            self.client_state = client.result.peer
        if server.result is not None and server.result.peer is not None:
            self.server_states[server.result.peer.dev_id] = server.result.peer
        return Outcome(client.result, server.result, count, cevents, sevents)

    def normalized(self) -> tuple[list[str], list[str]]:
        """Both sides' items, sorted, line endings folded."""

        def norm(items: list[str]) -> list[str]:
            return sorted(i.replace("\r\n", "\n").strip() for i in items)

        return norm(self.server_store.values()), norm(self.client_store.values())
