"""Builders and probes for the state repository tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, event, func, select, text

from syncmld.engine.state import ItemState, PairState, PeerState, RunRecord, StoreCounts
from syncmld.protocol.devinf import ContentTypeRef, DataStore, DevInf
from syncmld.state.models import Base

DEV = "IMEI:355884000217404"


def items(*specs: tuple[str, str | None], etag: str = "e1") -> dict[str, ItemState]:
    """Items by local id from ``(local_id, remote_id)`` pairs."""
    return {lid: ItemState(lid, rid, f"{etag}:{lid}", f"digest:{lid}") for lid, rid in specs}


def many_items(count: int, prefix: str = "", etag: str = "e1") -> dict[str, ItemState]:
    """``count`` items named ``{prefix}{n:06d}.vcf``."""
    return {
        f"{prefix}{n:06d}.vcf": ItemState(f"{prefix}{n:06d}.vcf", str(n), f"{etag}-{n}", f"{n:x}")
        for n in range(count)
    }


def pair(local_uri: str = "contacts", **kw: Any) -> PairState:
    """A pair with sensible defaults (``remote_uri`` = ``./`` + local)."""
    kw.setdefault("remote_uri", f"./{local_uri}")
    return PairState(local_uri=local_uri, **kw)


def peer(dev_id: str = DEV, *pairs: PairState, **kw: Any) -> PeerState:
    """A peer holding ``pairs`` by their local uri."""
    return PeerState(dev_id=dev_id, pairs={p.local_uri: p for p in pairs}, **kw)


def run(dev_id: str = DEV, started: float = 1000.0, **kw: Any) -> RunRecord:
    """A completed server-role run (``finished`` = ``started`` + 2.5 by default)."""
    kw.setdefault("finished", started + 2.5)
    kw.setdefault("role", "server")
    return RunRecord(dev_id=dev_id, started=started, **kw)


def counts(local_uri: str = "contacts", **kw: Any) -> StoreCounts:
    """StoreCounts for one pair."""
    return StoreCounts(local_uri=local_uri, **kw)


def phone_devinf() -> DevInf:
    """A small DevInf 1.2 as a phone sends it."""
    return DevInf(
        ver_dtd="1.2",
        man="Nokia",
        mod="E71",
        dev_id="IMEI:355884000217404",
        dev_typ="phone",
        utc=True,
        support_large_objs=True,
        datastores=(
            DataStore(
                source_ref="./contacts",
                display_name="Contacts",
                rx_pref=ContentTypeRef(ct_type="text/x-vcard", ver_ct="2.1"),
                tx_pref=ContentTypeRef(ct_type="text/x-vcard", ver_ct="2.1"),
                sync_caps=(1, 2, 7),
            ),
        ),
    )


def row_counts(engine: Engine) -> dict[str, int]:
    """Rows per table of the state schema."""
    with engine.connect() as conn:
        return {
            name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for name, table in Base.metadata.tables.items()
        }


def all_rows(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (sorted), to compare whole databases."""
    with engine.connect() as conn:
        return {
            name: sorted(tuple(r) for r in conn.execute(text(f"SELECT * FROM {name}")))
            for name in Base.metadata.tables
        }


@dataclass
class StatementLog:
    """SQL statements executed on an engine: (statement, number of parameter sets)."""

    statements: list[tuple[str, int]] = field(default_factory=list)

    def writes(self, table: str) -> list[tuple[str, int]]:
        """INSERT/UPDATE/DELETE statements on ``table``: (verb, rows bound)."""
        found = []
        for sql, n in self.statements:
            words = sql.split()
            verb = words[0].upper()
            target = {"INSERT": 2, "UPDATE": 1, "DELETE": 2}.get(verb)
            if target is not None and words[target] == table:
                found.append((verb, n))
        return found


@contextmanager
def statement_log(engine: Engine) -> Iterator[StatementLog]:
    """Record every statement executed on ``engine`` while the block runs."""
    log = StatementLog()

    def before(**kw: Any) -> None:
        many = kw["executemany"]
        log.statements.append((kw["statement"], len(kw["parameters"]) if many else 1))

    event.listen(engine, "before_cursor_execute", before, named=True)
    try:
        yield log
    finally:
        event.remove(engine, "before_cursor_execute", before)


def full_peer(dev_id: str = DEV) -> PeerState:
    """A peer using every field: DevInf, nonce, anchors, None remote ids, pending maps."""
    return peer(
        dev_id,
        pair(
            "contacts",
            local_anchor="20240601T120000Z",
            remote_anchor="1717243200",
            last_mode=200,
            items=items(("a.vcf", "1"), ("b.vcf", "2"), ("c.vcf", None)),
        ),
        pair(
            "calendar",
            remote_uri="./Calendar",
            local_anchor="",
            remote_anchor=None,
            last_mode=None,
            items=items(("x.ics", "10")),
            pending_maps={"10": "x.ics", "11": "y.ics"},
        ),
        devinf=phone_devinf(),
        nonce="Tm9uY2U=",
    )
