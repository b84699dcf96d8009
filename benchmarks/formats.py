"""Item conversion cost: FormatCodec to_local / to_remote / digest / merge per item.

Usage::

    python benchmarks/formats.py [--items N] [--repeat R] [--seed S] [--cpu K] [--profile OP:INPUT]

Prints one line per (operation, input)::

    to_local    vcard30-no-uid    5000 items    48.1 us/item

Inputs (generated, seeded, the same every run):

* ``vcard30``: desktop-form contacts as a store holds them: UTF-8 vCard 3.0,
  CRLF, folded at 75 octets, 400-600 bytes, with UID, N, FN, two TEL, EMAIL,
  ADR, ORG, NOTE, REV, some TITLE/BDAY/URL, about 8 % non-ASCII names;
* ``vcard30-no-uid``: the same cards without UID, as SyncEvolution's client
  sends them;
* ``vcard21``: the same cards as a phone sends them: vCard 2.1, bare TYPE
  parameters, ``CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE`` for non-ASCII and
  multi-line values, X-IRMC-LUID.

Operations (codec of kind ``contacts``):

* ``to_local``: the item as the peer sends it -> the desktop form;
* ``digest``: the normalized hash of the stored (``to_local``) text, called
  right after ``to_local`` as the engine does;
* ``to_remote``: the stored text for a vCard 3.0 peer (SyncEvolution's
  DevInf) and for a vCard 2.1 phone without DevInf;
* ``merge``: the stored text merged with the peer's edit of it (one TEL
  changed), for the vCard 3.0 peer.

Each figure is the best of ``--repeat`` passes over all items, in process CPU
time (``time.process_time``: steadier than wall time on a shared machine), on
one pinned core.  Caches inside the codec are emptied
before each pass, so a figure is what one sync session of fresh items costs.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import quopri
import random
import sys
import time
from collections.abc import Callable

from syncmld.engine.store import ContentType as EngineType
from syncmld.formats import codec as codec_module
from syncmld.formats import normalize as normalize_module
from syncmld.formats.codec import FormatCodec
from syncmld.protocol.devinf import ContentTypeRef as Rx
from syncmld.protocol.devinf import DataStore, DevInf

FIRST = ["John", "Mary", "Peter", "Anna", "Thomas", "Laura", "Michael", "Sarah", "David",
         "Emma", "James", "Olivia", "Robert", "Sophia", "William", "Julia"]
LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson",
        "Anderson", "Taylor", "Moore", "Martin", "Jackson", "White", "Harris", "Clark"]
FIRST_NA = ["Jürgen", "Zoë", "José", "Łukasz", "Søren", "François", "太郎", "Андрей"]
LAST_NA = ["Müller", "Groß", "Núñez", "Wałęsa", "Ødegaard", "Lefèvre", "山田", "Иванов"]
STREETS = ["Main Street", "Oak Avenue", "Hauptstraße", "Baker Street", "Rue de la Paix",
           "Park Lane", "Calle Mayor", "Lindenweg"]
CITIES = [("Springfield", "IL", "62701", "USA"), ("Berlin", "", "10115", "Germany"),
          ("München", "Bayern", "80331", "Germany"), ("London", "", "W1B 1AA", "United Kingdom"),
          ("Zürich", "ZH", "8001", "Switzerland"), ("Boston", "MA", "02108", "USA")]
COMPANIES = ["Acme Corp", "Globex", "Initech", "Umbrella GmbH", "Hooli", "Soylent AG"]
DEPTS = ["Sales", "Engineering", "Marketing", "Finance", "Support", "Research"]
TITLES = ["Manager", "Engineer", "Director", "Consultant", "Analyst", "Team Lead"]
NOTES = [
    "Met at the trade fair in Hannover; interested in the new line, call back after Easter.",
    "Prefers e-mail over phone. Birthday card every year, likes jazz and Italian food.",
    "Former colleague from the Berlin office; now remote, usually available mornings.",
    "Key account, quarterly review meetings; assistant handles the calendar, ask for Maria.",
    "Supplier contact for spare parts, order number format ABC-1234, delivery in 5 days.",
]


def _esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")


def _fold(line: str) -> list[str]:
    out: list[str] = []
    data = line.encode("utf-8")
    limit = 75
    while len(data) > limit:
        cut = limit
        while cut > 0 and (data[cut] & 0xC0) == 0x80:
            cut -= 1
        out.append(data[:cut].decode("utf-8"))
        data = data[cut:]
        limit = 74
    out.append(data.decode("utf-8"))
    return [out[0], *(" " + o for o in out[1:])]


def _contact(rng: random.Random, n: int) -> dict[str, str | tuple[str, ...]]:
    if rng.random() < 0.08:
        first, last = rng.choice(FIRST_NA), rng.choice(LAST_NA)
    else:
        first, last = rng.choice(FIRST), rng.choice(LAST)
    city = rng.choice(CITIES)
    card: dict[str, str | tuple[str, ...]] = {
        "uid": f"{rng.getrandbits(64):016x}-{n:06d}@bench.example",
        "n": (last, first, "", "", ""),
        "fn": f"{first} {last}",
        "tel_work": f"+49 30 {rng.randrange(1000000, 9999999)}",
        "tel_cell": f"+49 170 {rng.randrange(1000000, 9999999)}",
        "email": f"{first.lower()}.{last.lower()}{n}@example.com",
        "adr": ("", "", f"{rng.choice(STREETS)} {rng.randrange(1, 200)}", city[0], city[1],
                city[2], city[3]),
        "org": (rng.choice(COMPANIES), rng.choice(DEPTS)),
        "note": rng.choice(NOTES) + f" Contact number {n}.",
        "rev": f"2026{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}T120000Z",
    }
    if rng.random() < 0.4:
        card["title"] = rng.choice(TITLES)
    if rng.random() < 0.3:
        card["bday"] = f"19{rng.randrange(50, 99)}-{rng.randrange(1, 13):02d}-15"
    if rng.random() < 0.2:
        card["url"] = f"https://www.example.org/~{first.lower()}{n}"
    return card


def vcard30(card: dict[str, str | tuple[str, ...]], *, uid: bool = True) -> str:
    """A card as desktop vCard 3.0 text (CRLF, folded)."""
    lines = ["BEGIN:VCARD", "VERSION:3.0"]
    if uid:
        lines.append(f"UID:{card['uid']}")
    lines.append("N:" + ";".join(_esc(p) for p in card["n"]))
    lines.append(f"FN:{_esc(str(card['fn']))}")
    if "title" in card:
        lines.append(f"TITLE:{_esc(str(card['title']))}")
    lines.append("ORG:" + ";".join(_esc(p) for p in card["org"]))
    lines.append(f"TEL;TYPE=WORK,VOICE:{card['tel_work']}")
    lines.append(f"TEL;TYPE=CELL:{card['tel_cell']}")
    lines.append(f"EMAIL;TYPE=INTERNET,WORK:{card['email']}")
    lines.append("ADR;TYPE=WORK:" + ";".join(_esc(p) for p in card["adr"]))
    if "bday" in card:
        lines.append(f"BDAY:{card['bday']}")
    if "url" in card:
        lines.append(f"URL:{card['url']}")
    lines.append(f"NOTE:{_esc(str(card['note']))}")
    lines.append(f"REV:{card['rev']}")
    lines.append("END:VCARD")
    return "".join(f"{row}\r\n" for line in lines for row in _fold(line))


def _qp(text: str) -> str:
    return quopri.encodestring(text.encode("utf-8")).decode("ascii").replace("=\n", "")


def vcard21(card: dict[str, str | tuple[str, ...]], luid: int) -> str:
    """A card as a phone sends it: vCard 2.1, QP for non-ASCII, bare types."""
    def prop(head: str, value: str) -> str:
        if value.isascii():
            return f"{head}:{value}"
        return f"{head};CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:{_qp(value)}"

    lines = ["BEGIN:VCARD", "VERSION:2.1", prop("N", ";".join(card["n"])),
             prop("FN", str(card["fn"]))]
    if "title" in card:
        lines.append(prop("TITLE", str(card["title"])))
    lines.append(prop("ORG", ";".join(card["org"])))
    lines.append(f"TEL;WORK;VOICE:{card['tel_work']}")
    lines.append(f"TEL;CELL:{card['tel_cell']}")
    lines.append(f"EMAIL;INTERNET:{card['email']}")
    lines.append(prop("ADR;WORK", ";".join(card["adr"])))
    if "bday" in card:
        lines.append(f"BDAY:{str(card['bday']).replace('-', '')}")
    if "url" in card:
        lines.append(f"URL:{card['url']}")
    lines.append(prop("NOTE", str(card["note"]).replace(",", "\\,")))
    lines.append(f"X-IRMC-LUID:{luid:06d}")
    lines.append("END:VCARD")
    return "".join(f"{line}\r\n" for line in lines)


def se_devinf() -> DevInf:
    """A vCard 3.0 peer (SyncEvolution's client)."""
    v30 = Rx(ct_type="text/vcard", ver_ct="3.0")
    v21 = Rx(ct_type="text/x-vcard", ver_ct="2.1")
    store = DataStore(source_ref="addressbook", rx_pref=v30, rx=(v21,), tx_pref=v30, tx=(v21,))
    return DevInf(ver_dtd="1.2", man="Patrick Ohly", mod="SyncEvolution", sw_v="2.0",
                  dev_id="bench", dev_typ="workstation", datastores=(store,))


def _clear_caches() -> None:
    for module in (codec_module, normalize_module):
        clear = getattr(module, "clear_caches", None)
        if clear is not None:
            clear()


def _measure(fn: Callable[[], None], items: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        _clear_caches()
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best / items * 1e6


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--cpu", type=int, default=None)
    parser.add_argument("--profile", metavar="OP:INPUT", default=None,
                        help="print a cProfile of one operation (e.g. to_local:vcard30-no-uid)")
    args = parser.parse_args(argv)
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {args.cpu if args.cpu is not None else cpus[0]})

    rng = random.Random(args.seed)
    cards = [_contact(rng, n) for n in range(args.items)]
    inputs = {
        "vcard30": [vcard30(c) for c in cards],
        "vcard30-no-uid": [vcard30(c, uid=False) for c in cards],
        "vcard21": [vcard21(c, n + 1) for n, c in enumerate(cards)],
    }
    sizes = {k: sum(len(t.encode()) for t in v) / len(v) for k, v in inputs.items()}
    labels = {"vcard30": "text/vcard", "vcard30-no-uid": "text/vcard",
              "vcard21": "text/x-vcard"}
    base = FormatCodec("contacts")
    se = base.for_peer(se_devinf(), "addressbook")
    phone = base.for_peer(None, "addressbook")
    accepted = (EngineType("text/vcard", "3.0"),)
    stored = {k: [se.to_local(t, labels[k]) for t in v] for k, v in inputs.items()}
    edited = {k: [t.replace("TEL;TYPE=CELL:+49 170 ", "TEL;TYPE=CELL:+49 171 ")
                  for t in v] for k, v in stored.items()}

    def op_to_local(name: str) -> Callable[[], None]:
        texts, label = inputs[name], labels[name]
        return lambda: [se.to_local(t, label) for t in texts] and None

    def op_digest(name: str) -> Callable[[], None]:
        texts, label = inputs[name], labels[name]
        return lambda: [se.digest(se.to_local(t, label)) for t in texts] and None

    def op_to_remote(codec: FormatCodec, name: str) -> Callable[[], None]:
        texts = stored[name]
        return lambda: [codec.to_remote(t, accepted if codec is se else ()) for t in texts
                        ] and None

    def op_merge(name: str) -> Callable[[], None]:
        pairs = list(zip(stored[name], edited[name], strict=True))
        return lambda: [se.merge(local, remote) for local, remote in pairs] and None

    cases: list[tuple[str, str, Callable[[], None]]] = []
    for name in inputs:
        cases.append(("to_local", name, op_to_local(name)))
        cases.append(("to_local+digest", name, op_digest(name)))
    for name in ("vcard30", "vcard30-no-uid"):
        cases.append(("to_remote(3.0)", name, op_to_remote(se, name)))
        cases.append(("to_remote(2.1)", name, op_to_remote(phone, name)))
        cases.append(("merge", name, op_merge(name)))

    if args.profile:
        op, _, name = args.profile.partition(":")
        chosen = [fn for o, n, fn in cases if o == op and n == name]
        if not chosen:
            parser.error(f"no case {args.profile!r}")
        _clear_caches()
        prof = cProfile.Profile()
        prof.runcall(chosen[0])
        pstats.Stats(prof, stream=sys.stdout).sort_stats("cumulative").print_stats(25)
        return 0

    print(f"{args.items} contacts; mean size: "
          + ", ".join(f"{k} {v:.0f} B" for k, v in sizes.items()))
    for op, name, fn in cases:
        fn()  # warm-up
        us = _measure(fn, args.items, args.repeat)
        print(f"{op:<16} {name:<15} {args.items:>6} items {us:9.1f} us/item", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
