"""Engine speed and memory: a slow sync of N contacts, client to server, in one process.

Usage: ``python benchmarks/engine.py --items 20000 [--items 1000 ...] [--xml]``

For each N: a fresh client store with N generated vCard 3.0 contacts
(300-600 bytes), an empty server store, SQLite state databases in a temporary
directory; then

* ``slow``: the first sync (slow, WBXML unless ``--xml``), states committed;
* ``nochange``: a two-way sync with no changes on either side.

Each run prints one line ending in ``items_per_s=... peak_rss_mb=...``.
Peak RSS is the process's high-water mark (``ru_maxrss``); run one N per
process (the default) for a per-N figure.

``--tracemalloc`` traces Python allocations (slower; the speed figures then
mean little) and, for each sync, prints the traced peak and the largest
allocation sites still alive once the last message is handled, while both
sessions still exist and before the states are saved.
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from syncmld.engine.client import ClientConfig, ClientSession, ClientStore
from syncmld.engine.server import ServerConfig, ServerSession
from syncmld.engine.session import Datastore
from syncmld.engine.store import VCARD_30, MemoryStore
from syncmld.protocol.codec import Encoding
from syncmld.protocol.codes import SyncMode
from syncmld.state.repository import StateRepository

FIRST = ["Anna", "Jonas", "Maria", "Lukas", "Sophie", "Elias", "Emma", "Paul", "Mia", "Noah"]
LAST = ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker"]
CITIES = ["Berlin", "Hamburg", "München", "Köln", "Frankfurt am Main", "Stuttgart"]


def contact(rng: random.Random, n: int) -> str:
    """A realistic vCard 3.0 of roughly 300-600 bytes."""
    first, last = rng.choice(FIRST), rng.choice(LAST)
    lines = [
        "BEGIN:VCARD",
        "VERSION:3.0",
        f"UID:bench-{n:06d}-{rng.getrandbits(32):08x}",
        f"N:{last};{first};;;",
        f"FN:{first} {last}",
        f"TEL;TYPE=CELL:+49 151 {rng.randrange(10**7, 10**8)}",
        f"EMAIL;TYPE=INTERNET:{first.lower()}.{n}@example.org",
    ]
    if rng.random() < 0.7:
        lines.append(f"TEL;TYPE=WORK:+49 30 {rng.randrange(10**6, 10**7)}")
    if rng.random() < 0.6:
        lines.append(
            f"ADR;TYPE=HOME:;;Hauptstraße {rng.randrange(1, 200)};{rng.choice(CITIES)};;"
            f"{rng.randrange(10000, 99999)};Germany"
        )
    if rng.random() < 0.5:
        lines.append(f"ORG:Example {rng.choice(LAST)} GmbH")
    if rng.random() < 0.4:
        lines.append("NOTE:" + " ".join(rng.choice(FIRST + LAST) for _ in range(12)))
    lines.append("END:VCARD")
    return "\r\n".join(lines) + "\r\n"


def sync(
    client_store: MemoryStore,
    server_store: MemoryStore,
    client_db: StateRepository,
    server_db: StateRepository,
    *,
    now: float,
    encoding: Encoding,
    mode: SyncMode,
    before_save: Callable[[], None] | None = None,
) -> tuple[int, int]:
    """One session with states loaded and committed; returns (messages, bytes).

    ``before_save`` is called after the last message, before the states are saved.
    """
    server = ServerSession(
        ServerConfig(datastores=(Datastore(name="contacts", store=server_store),)),
        load_peer=server_db.load_peer,
        now=now,
    )
    client = ClientSession(
        ClientConfig(
            url="http://127.0.0.1/sync",
            dev_id="bench-client",
            stores=(
                ClientStore(
                    datastore=Datastore(name="card", store=client_store),
                    remote_uri="contacts",
                    mode=mode,
                ),
            ),
            encoding=encoding,
        ),
        peer=client_db.load_peer("http://127.0.0.1/sync"),
        now=now,
    )
    messages = volume = 0
    data: bytes | None = client.start()
    while data is not None:
        reply = server.receive(data)
        result = client.receive(reply.data)
        messages += 2
        volume += len(data) + len(reply.data)
        data = result.data
    assert server.result is not None and server.result.peer is not None, server.result
    assert client.result is not None and client.result.peer is not None, client.result
    if before_save is not None:
        before_save()
    server_db.save_session(server.result.peer, server.result.run)
    client_db.save_session(client.result.peer, client.result.run)
    return messages, volume


def peak_rss_mb() -> float:
    """The process's peak resident set size in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def print_allocations(label: str, top: int = 15) -> None:
    """The traced peak and the largest live allocation sites (``--tracemalloc``)."""
    current, peak = tracemalloc.get_traced_memory()
    print(f"  {label}: traced now {current / 1e6:.1f} MB, peak {peak / 1e6:.1f} MB")
    for stat in tracemalloc.take_snapshot().statistics("lineno")[:top]:
        frame = stat.traceback[0]
        print(f"    {stat.size / 1e6:6.2f} MB {stat.count:7d} x  {frame.filename}:{frame.lineno}")


def run(items: int, encoding: Encoding, *, trace: bool = False) -> None:
    """Benchmark one N and print its lines (``trace``: see ``--tracemalloc``)."""
    rng = random.Random(items)
    client_store = MemoryStore((contact(rng, i) for i in range(items)), content_types=(VCARD_30,))
    server_store = MemoryStore(content_types=(VCARD_30,))
    with tempfile.TemporaryDirectory() as tmp:
        client_db = StateRepository(f"sqlite:///{Path(tmp) / 'client.db'}")
        server_db = StateRepository(f"sqlite:///{Path(tmp) / 'server.db'}")
        with client_db, server_db:
            enc = "wbxml" if encoding is Encoding.WBXML else "xml"
            for label, mode, now in (
                ("slow", SyncMode.SLOW, 1_700_000_000.0),
                ("nochange", SyncMode.TWO_WAY, 1_700_000_600.0),
            ):
                if trace:
                    tracemalloc.start()
                start = time.perf_counter()
                cpu = time.process_time()
                messages, volume = sync(
                    client_store,
                    server_store,
                    client_db,
                    server_db,
                    now=now,
                    encoding=encoding,
                    mode=mode,
                    before_save=functools.partial(print_allocations, label) if trace else None,
                )
                wall = time.perf_counter() - start
                cpu = time.process_time() - cpu
                assert len(server_store) == items
                print(
                    f"{label:8s} items={items} encoding={enc} messages={messages} "
                    f"bytes={volume} wall_s={wall:.3f} cpu_s={cpu:.3f} "
                    f"items_per_s={items / wall:.0f} peak_rss_mb={peak_rss_mb():.1f}",
                    flush=True,
                )


def main() -> int:
    """Command line: one subprocess per N, so each peak RSS is its own."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, action="append", help="N (repeatable)")
    parser.add_argument("--xml", action="store_true", help="XML instead of WBXML")
    parser.add_argument(
        "--tracemalloc", action="store_true", help="print the largest live allocations"
    )
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = args.items or [1000, 20000]
    encoding = Encoding.XML if args.xml else Encoding.WBXML
    if args.in_process or len(sizes) == 1:
        for n in sizes:
            run(n, encoding, trace=args.tracemalloc)
        return 0
    for n in sizes:
        cmd = [sys.executable, __file__, "--items", str(n), "--in-process"]
        if args.xml:
            cmd.append("--xml")
        if args.tracemalloc:
            cmd.append("--tracemalloc")
        subprocess.run(cmd, check=True, env=os.environ)
    return 0


if __name__ == "__main__":
    sys.exit(main())
