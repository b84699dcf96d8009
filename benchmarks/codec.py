"""Codec throughput: decode (bytes -> Message) and encode (Message -> bytes).

Usage::

    python benchmarks/codec.py [--repeat N] [--min-time S] [--cpu K] [--profile INPUT:ENC:DIR]

Prints one line per (input, encoding, direction)::

    wbxml decode  sync-2000-vcards    1.02 MB   23.4 MB/s   22.9 msg/s

Inputs:

* ``syncevolution``: every SyncEvolution message in ``tests/data/vectors``
  (HTTP and OBEX, XML and WBXML, all sync modes).  Each encoding is measured
  on the whole set: a message recorded in that encoding as recorded, the
  others as we encode them.  Throughput is over the set (total bytes, total
  messages).
* ``sync-2000-vcards``: one generated Sync message of about 1 MB: 2,000 Adds,
  each one vCard 3.0 of 300-600 bytes with realistic fields (seeded, so the
  same every run).

Decode is the full path to the model (``decode_message``: sniffing, the byte
codec, the tree, the model); encode the full path back (``encode_message``).
Timing is ``time.perf_counter`` on one core (the process is pinned to
``--cpu``, default the first allowed one); each figure is the best of
``--repeat`` runs of at least ``--min-time`` seconds each, after a warm-up,
with the garbage collector left on as in production.  MB are 10**6 bytes.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

from syncmld.protocol.codec import Encoding, decode_message, encode_message, sniff
from syncmld.protocol.model import (
    Add,
    Alert,
    Anchor,
    Item,
    Location,
    Message,
    Meta,
    Status,
    Sync,
    SyncHdr,
)

ROOT = Path(__file__).resolve().parent.parent
SYNCEVOLUTION = ROOT / "tests" / "data" / "vectors" / "syncevolution"
MB = 1_000_000

# --- inputs -------------------------------------------------------------------------


def syncevolution_messages() -> list[tuple[bytes, Message]]:
    """(wire bytes, model) of every SyncEvolution message (translations excluded)."""
    out = []
    for path in sorted(SYNCEVOLUTION.rglob("*")):
        if path.suffix not in (".xml", ".wbxml") or path.name.endswith(".translated.xml"):
            continue
        data = path.read_bytes()
        out.append((data, decode_message(data)))
    if not out:
        sys.exit(f"no SyncEvolution vectors under {SYNCEVOLUTION}")
    return out


GIVEN = ("Anna", "Jürgen", "Søren", "Zoë", "Mei", "José", "Aïcha", "Олег", "John", "Priya")
FAMILY = ("Müller", "Nakamura", "O'Brien", "García", "Kowalski", "Smith", "Østergaard", "Li")
STREETS = ("Hauptstraße", "Rue de la Paix", "Baker Street", "Calle Mayor", "Via Roma")
CITIES = ("Berlin", "Paris", "London", "Madrid", "Roma", "Zürich", "København")
ORGS = ("ACME GmbH", "Initech", "Globex Corporation", "Umbrella plc", "Stark Industries")
TITLES = ("Engineer", "Sales Manager", "CEO", "Product Owner", "Accountant")
NOTES = (
    "Met at the trade fair\\, follow up in spring.",
    "Prefers e-mail; do not call before 10:00.",
    "Birthday party invitation sent.",
    "Has a key to the office.",
)


def vcard(rng: random.Random, n: int) -> str:
    """A vCard 3.0 of 300-600 bytes (UTF-8) with the fields phones send."""
    given, family = rng.choice(GIVEN), rng.choice(FAMILY)
    lines = [
        "BEGIN:VCARD",
        "VERSION:3.0",
        f"N:{family};{given};;;",
        f"FN:{given} {family}",
        f"ORG:{rng.choice(ORGS)}",
        f"TITLE:{rng.choice(TITLES)}",
        f"TEL;TYPE=CELL:+49 151 {rng.randrange(10**7, 10**8)}",
        f"TEL;TYPE=WORK,VOICE:+49 30 {rng.randrange(10**6, 10**7)}",
        f"EMAIL;TYPE=INTERNET:{given.lower()}.{n}@example.com",
        (
            f"ADR;TYPE=HOME:;;{rng.choice(STREETS)} {rng.randrange(1, 200)};"
            f"{rng.choice(CITIES)};;{rng.randrange(10000, 99999)};Germany"
        ),
        f"BDAY:{rng.randrange(1950, 2005)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
        f"UID:{rng.getrandbits(64):016x}-{n}",
        f"REV:2024{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}T120000Z",
    ]
    body = "\r\n".join(lines)
    target = rng.randrange(300, 601)
    note = ""
    while len((body + note).encode()) + 24 < target:
        note += rng.choice(NOTES) + " "
    if note:
        lines.append("NOTE:" + note.strip())
    lines += ["END:VCARD", ""]
    text = "\r\n".join(lines)
    assert 250 <= len(text.encode()) <= 650, len(text.encode())
    return text


def sync_with_vcards(count: int = 2000, seed: int = 2700) -> Message:
    """A client's Sync of ``count`` new contacts (one Add per vCard)."""
    rng = random.Random(seed)
    header = SyncHdr(
        ver_dtd="1.2",
        ver_proto="SyncML/1.2",
        session_id="1168032875",
        msg_id=3,
        target=Location(uri="http://127.0.0.1:9300/sync"),
        source=Location(uri="IMEI:355884000217404", name="test"),
        meta=Meta(max_msg_size=2_000_000, max_obj_size=4_000_000),
    )
    adds = tuple(
        Add(
            cmd_id=4 + i,
            meta=Meta(type="text/vcard"),
            items=(Item(source=Location(uri=f"{1000 + i}"), data=vcard(rng, i)),),
        )
        for i in range(count)
    )
    commands = (
        Status(cmd_id=1, msg_ref=2, cmd_ref=0, cmd="SyncHdr", data=200,
               target_refs=("IMEI:355884000217404",), source_refs=("http://127.0.0.1:9300/sync",)),
        Alert(cmd_id=2, data=201, items=(Item(
            target=Location(uri="./contacts"), source=Location(uri="./addressbook"),
            meta=Meta(anchor=Anchor(last="20240101T000000Z", next="20240315T090000Z")),
        ),)),
        Sync(cmd_id=3, target=Location(uri="./contacts"), source=Location(uri="./addressbook"),
             number_of_changes=count, commands=adds),
    )  # fmt: skip
    return Message(header=header, commands=commands, final=True)


# --- measuring ----------------------------------------------------------------------


def best_rate(fn: Callable[[], object], *, repeat: int, min_time: float) -> float:
    """Calls per second: the best of ``repeat`` runs of at least ``min_time`` s."""
    fn()  # warm-up
    best = 0.0
    for _ in range(repeat):
        calls = 0
        start = time.perf_counter()
        elapsed = 0.0
        while elapsed < min_time:
            fn()
            calls += 1
            elapsed = time.perf_counter() - start
        best = max(best, calls / elapsed)
    return best


def _pin(cpu: int | None) -> str:
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned"
    allowed = sorted(os.sched_getaffinity(0))
    chosen = allowed[0] if cpu is None else cpu
    os.sched_setaffinity(0, {chosen})
    return f"pinned to CPU {chosen}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (best is kept)")
    parser.add_argument("--min-time", type=float, default=1.0, help="seconds per run")
    parser.add_argument("--cpu", type=int, default=None, help="CPU to pin the process to")
    parser.add_argument(
        "--profile",
        metavar="INPUT:ENC:DIR",
        help="instead of timing, cProfile one case, e.g. sync-2000-vcards:xml:decode",
    )
    args = parser.parse_args(argv)
    where = _pin(args.cpu)

    vectors = syncevolution_messages()
    big = sync_with_vcards()
    inputs: dict[str, dict[Encoding, tuple[list[bytes], list[Message]]]] = {}
    for name, pairs in (
        ("syncevolution", vectors),
        ("sync-2000-vcards", [(encode_message(big, Encoding.XML), big)]),
    ):
        inputs[name] = {}
        for enc in Encoding:
            blobs = [d if sniff(d) is enc else encode_message(m, enc) for d, m in pairs]
            models = [decode_message(b) for b in blobs]
            inputs[name][enc] = (blobs, models)

    if args.profile:
        name, enc_name, direction = args.profile.split(":")
        enc = Encoding[enc_name.upper()]
        blobs, models = inputs[name][enc]
        if direction == "decode":
            work: Callable[[], object] = lambda: [decode_message(b) for b in blobs]  # noqa: E731
        else:
            work = lambda: [encode_message(m, enc) for m in models]  # noqa: E731
        work()
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(5):
            work()
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        return 0

    print(f"# syncmld codec benchmark: Python {sys.version.split()[0]}, {where}, "
          f"best of {args.repeat} x {args.min_time:g} s")  # fmt: skip
    gc.collect()
    for name, per_enc in inputs.items():
        for enc in (Encoding.XML, Encoding.WBXML):
            blobs, models = per_enc[enc]
            size = sum(len(b) for b in blobs)
            label = enc.name.lower()
            for direction in ("decode", "encode"):
                if direction == "decode":
                    rate = best_rate(
                        lambda blobs=blobs: [decode_message(b) for b in blobs],
                        repeat=args.repeat,
                        min_time=args.min_time,
                    )
                else:
                    rate = best_rate(
                        lambda models=models, enc=enc: [encode_message(m, enc) for m in models],
                        repeat=args.repeat,
                        min_time=args.min_time,
                    )
                print(
                    f"{label:<5} {direction}  {name:<18} {size / MB:6.2f} MB "
                    f"{rate * size / MB:7.1f} MB/s {rate * len(blobs):9.1f} msg/s",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
