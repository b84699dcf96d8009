"""Items a store cannot read are left alone, never taken for deletions.

A vdir file damaged by hand used to vanish from the listing: the engine saw
a deleted item and sent the Delete to the peer, which lost the contact on
both sides.  Now the store lists it and raises ItemUnreadable on reading;
the engine sends nothing about it, keeps its row, and says so in the run.
"""

from __future__ import annotations

from pathlib import Path

from syncmld.engine.state import StoreCounts
from syncmld.engine.store import VCARD_30, MemoryStore
from syncmld.stores.vdir import VdirStore
from tests.engine.pair import Pair, vcard

GARBAGE = "BEGIN:VCARD\r\nthis line lost its colon\r\nEND:VCARD\r\n"


def texts(store: VdirStore | MemoryStore) -> list[str]:
    return sorted(store.get(i)[0].replace("\r\n", "\n").strip() for i, _ in store.list())


def counts(outcome_run_stores: tuple[StoreCounts, ...]) -> StoreCounts:
    (only,) = outcome_run_stores
    return only


def test_server_item_damaged_by_hand_is_not_deleted_on_the_phone(tmp_path: Path) -> None:
    """Regression: a damaged server file was sent to the phone as a Delete."""
    desk = VdirStore(tmp_path / "contacts", content_types=(VCARD_30,), suffix=".vcf")
    pair = Pair(server_store=desk)  # type: ignore[arg-type]
    ids = [desk.add(vcard(n))[0] for n in range(3)]
    assert pair.sync().ok
    rows_before = dict(pair.server_states["device-1"].pairs["contacts"].items)
    (tmp_path / "contacts" / ids[0]).write_text(GARBAGE, encoding="utf-8")
    pair.client_store.add(vcard(7))

    outcome = pair.sync()
    assert outcome.ok, outcome.client.run
    assert len(pair.client_store) == 4  # nothing deleted on the phone, the new one came
    assert outcome.server is not None
    server_counts = counts(outcome.server.run.stores)
    assert server_counts.remote_deleted == server_counts.remote_replaced == 0
    assert server_counts.local_added == 1
    assert (
        server_counts.message
        == f"1 item could not be read: contacts/{ids[0]}: line 2: not a property line"
    )
    rows = pair.server_states["device-1"].pairs["contacts"].items
    assert rows[ids[0]] == rows_before[ids[0]]

    # Repaired (and edited), it syncs as a change again.
    (tmp_path / "contacts" / ids[0]).write_text(vcard(0, "Repaired"), encoding="utf-8")
    again = pair.sync()
    assert again.ok
    assert again.server is not None and counts(again.server.run.stores).message == ""
    assert texts(pair.client_store) == texts(desk)
    assert any("Repaired" in t for t in texts(pair.client_store))


def test_phone_item_damaged_is_not_deleted_on_the_server(tmp_path: Path) -> None:
    """Regression: the client role, too, took a damaged file for a deletion."""
    phone = VdirStore(tmp_path / "phone", content_types=(VCARD_30,), suffix=".vcf")
    pair = Pair(client_store=phone)  # type: ignore[arg-type]
    ids = [phone.add(vcard(n))[0] for n in range(3)]
    pair.server_store.add(vcard(9))
    assert pair.sync().ok
    assert pair.client_state is not None
    rows_before = dict(pair.client_state.pairs["card"].items)
    (tmp_path / "phone" / ids[1]).write_text(GARBAGE, encoding="utf-8")
    (tmp_path / "phone" / "never-synced.vcf").write_text(GARBAGE, encoding="utf-8")
    # The server edits the damaged item meanwhile: the damaged file is not overwritten.
    server_id = next(
        i for i, _ in pair.server_store.list() if "uid-1" in pair.server_store.get(i)[0]
    )
    pair.server_store.edit(server_id, vcard(1, "ServerEdit"))

    outcome = pair.sync()
    assert outcome.client.run.status == 200, outcome.client.run
    assert len(pair.server_store) == 4  # nothing deleted, nothing added
    client_counts = counts(outcome.client.run.stores)
    assert client_counts.remote_deleted == client_counts.remote_added == 0
    assert client_counts.message.startswith("2 items could not be read: phone/")
    assert (tmp_path / "phone" / ids[1]).read_bytes() == GARBAGE.encode()
    assert pair.client_state.pairs["card"].items[ids[1]] == rows_before[ids[1]]
