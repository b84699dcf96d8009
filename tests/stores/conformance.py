"""The store conformance suite: what every store, built-in or plug-in, must do.

A store's test module subclasses :class:`StoreConformance` (the class name
must start with ``Test`` for pytest to collect it) and implements
:meth:`StoreConformance.new_store` (an empty store in a fresh folder),
:meth:`StoreConformance.make_item` (valid item text for that store) and
:meth:`StoreConformance.edit_behind` (change an item as another program
would).  The suite checks the :class:`~syncmld.engine.store.Store` contract:

* add/get/list/replace/delete round trips, exact text preserved;
* an etag changes when the item changes, and only then (listing twice, or
  reading, leaves it alone);
* writes naming a stale etag raise ``PreconditionFailed`` and change nothing;
  missing items raise ``ItemNotFound``;
* Unicode (emoji, Cyrillic, CJK, combining marks) and large items;
* many items with distinct, stable ids;
* ``list`` returns a snapshot (adding while iterating it is fine);
* an edit by another program between a read and a write is never
  overwritten;
* a Hypothesis state machine compares the store with a dict model over
  random sequences of operations (vdirsyncer's approach).

A plug-in author runs it against an agent with::

    from syncmld.agent import AgentStore
    from tests.stores.conformance import StoreConformance

    class TestMyAgent(StoreConformance):
        def new_store(self, folder):
            return AgentStore(MyAgent(folder))
        ...
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import ClassVar

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
    run_state_machine_as_test,
)

from syncmld.engine.store import ItemNotFound, PreconditionFailed, Store

#: Text from every script, without control characters and surrogates.
TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")),
    min_size=1,
    max_size=40,
)
SAMPLES = (
    "Ünïcödé straße",
    "Москва, Тверская улица",
    "東京都 渋谷区 🎉👩\u200d👩\u200d👧",
    "e\u0301\u0323 combining \u0308marks",
    "tab\tand ; , : \\ specials",
)


class StoreConformance:
    """Tests every store must pass; see the module documentation."""

    #: Largest item the large-item test writes (bytes, roughly).
    large_size: ClassVar[int] = 1_000_000
    #: How many items the many-items test adds.
    many: ClassVar[int] = 150
    #: Examples and steps of the state machine (capped below the Hypothesis profile).
    machine_examples: ClassVar[int] = 25
    machine_steps: ClassVar[int] = 15

    # ------------------------------------------------------------ hooks
    def new_store(self, folder: Path) -> Store:
        """An empty store; ``folder`` is a fresh, existing temporary folder."""
        raise NotImplementedError

    def make_item(self, uid: str, text: str) -> str:
        """Valid item data for this store with the given UID, carrying ``text``."""
        raise NotImplementedError

    def edit_behind(self, store: Store, item_id: str, data: str) -> None:
        """Change an item the way another program would (no etag, no precondition)."""
        raise NotImplementedError

    # ------------------------------------------------------------ fixtures
    @pytest.fixture
    def store(self, tmp_path: Path) -> Store:
        folder = tmp_path / "store"
        folder.mkdir()
        return self.new_store(folder)

    # ------------------------------------------------------------ basics
    def test_empty(self, store: Store) -> None:
        assert list(store.list()) == []
        assert store.content_types

    def test_add_get_list(self, store: Store) -> None:
        data = self.make_item("a-1", "first")
        item_id, etag = store.add(data)
        assert isinstance(item_id, str) and item_id
        assert isinstance(etag, str) and etag
        assert store.get(item_id) == (data, etag)
        assert list(store.list()) == [(item_id, etag)]

    def test_replace(self, store: Store) -> None:
        item_id, etag = store.add(self.make_item("r-1", "before"))
        new = self.make_item("r-1", "after")
        new_etag = store.replace(item_id, new, etag=etag)
        assert new_etag != etag
        assert store.get(item_id) == (new, new_etag)
        assert list(store.list()) == [(item_id, new_etag)]

    def test_replace_without_etag_is_unconditional(self, store: Store) -> None:
        item_id, _ = store.add(self.make_item("u-1", "before"))
        new = self.make_item("u-1", "after")
        etag = store.replace(item_id, new, etag=None)
        assert store.get(item_id) == (new, etag)

    def test_delete(self, store: Store) -> None:
        keep, keep_etag = store.add(self.make_item("d-1", "keep"))
        gone, etag = store.add(self.make_item("d-2", "gone"))
        store.delete(gone, etag=etag)
        assert list(store.list()) == [(keep, keep_etag)]
        with pytest.raises(ItemNotFound):
            store.get(gone)
        with pytest.raises(ItemNotFound):
            store.delete(gone, etag=None)
        with pytest.raises(ItemNotFound):
            store.replace(gone, self.make_item("d-2", "back"), etag=None)

    def test_missing_items(self, store: Store) -> None:
        for bogus in ("nope", "nope.vcf", "../escape", ""):
            with pytest.raises(ItemNotFound):
                store.get(bogus)
            with pytest.raises(ItemNotFound):
                store.delete(bogus, etag=None)
        assert list(store.get_many(["nope"])) == []

    def test_get_many_skips_missing(self, store: Store) -> None:
        a, ea = store.add(self.make_item("m-1", "one"))
        b, eb = store.add(self.make_item("m-2", "two"))
        got = {i: (d, e) for i, d, e in store.get_many([a, "missing", b])}
        assert got == {a: (self.make_item("m-1", "one"), ea), b: (self.make_item("m-2", "two"), eb)}

    # ------------------------------------------------------------ etags
    def test_etag_is_stable_without_changes(self, store: Store) -> None:
        ids = [store.add(self.make_item(f"s-{n}", f"item {n}"))[0] for n in range(5)]
        first = dict(store.list())
        for item_id in ids:
            store.get(item_id)
        assert dict(store.list()) == first
        assert {i: store.get(i)[1] for i in ids} == first

    def test_etag_changes_on_change(self, store: Store) -> None:
        item_id, etag = store.add(self.make_item("c-1", "v0"))
        seen = {etag}
        for n in range(1, 6):
            etag = store.replace(item_id, self.make_item("c-1", f"v{n}"), etag=etag)
            assert etag not in seen
            seen.add(etag)

    def test_stale_etag_is_refused(self, store: Store) -> None:
        item_id, old = store.add(self.make_item("p-1", "v1"))
        current = store.replace(item_id, self.make_item("p-1", "v2"), etag=old)
        with pytest.raises(PreconditionFailed):
            store.replace(item_id, self.make_item("p-1", "v3"), etag=old)
        with pytest.raises(PreconditionFailed):
            store.delete(item_id, etag=old)
        assert store.get(item_id) == (self.make_item("p-1", "v2"), current)

    def test_edit_behind_our_back_is_not_overwritten(self, store: Store) -> None:
        item_id, etag = store.add(self.make_item("e-1", "ours"))
        theirs = self.make_item("e-1", "edited in another program")
        self.edit_behind(store, item_id, theirs)
        listed = dict(store.list())
        assert listed[item_id] != etag
        with pytest.raises(PreconditionFailed):
            store.replace(item_id, self.make_item("e-1", "sync"), etag=etag)
        with pytest.raises(PreconditionFailed):
            store.delete(item_id, etag=etag)
        assert store.get(item_id) == (theirs, listed[item_id])
        # The next sync sees the new etag and may write.
        store.replace(item_id, self.make_item("e-1", "merged"), etag=listed[item_id])
        assert store.get(item_id)[0] == self.make_item("e-1", "merged")

    # ------------------------------------------------------------ content
    @pytest.mark.parametrize("text", SAMPLES)
    def test_unicode(self, store: Store, text: str) -> None:
        data = self.make_item("uni-1", text)
        item_id, etag = store.add(data)
        assert store.get(item_id) == (data, etag)

    def test_large_item(self, store: Store) -> None:
        line = "Lorem ipsum dolor sit amet, Ωμέγα 🎉 "
        data = self.make_item("big-1", line * (self.large_size // len(line.encode())))
        item_id, etag = store.add(data)
        assert store.get(item_id) == (data, etag)

    # ------------------------------------------------------------ ids
    def test_many_items(self, store: Store) -> None:
        added = dict(store.add(self.make_item(f"n-{n}", f"item {n}")) for n in range(self.many))
        assert len(added) == self.many
        assert dict(store.list()) == added
        got = {i: d for i, d, _ in store.get_many(added)}
        assert sorted(got.values()) == sorted(
            self.make_item(f"n-{n}", f"item {n}") for n in range(self.many)
        )

    def test_same_uid_twice_gets_two_items(self, store: Store) -> None:
        a, _ = store.add(self.make_item("twin", "one"))
        b, _ = store.add(self.make_item("twin", "two"))
        assert a != b
        assert store.get(a)[0] == self.make_item("twin", "one")
        assert store.get(b)[0] == self.make_item("twin", "two")

    def test_ids_are_stable(self, store: Store) -> None:
        ids = [store.add(self.make_item(f"i-{n}", f"item {n}"))[0] for n in range(4)]
        etag = store.get(ids[1])[1]
        store.replace(ids[1], self.make_item("a-new-uid", "changed"), etag=etag)
        store.delete(ids[2], etag=None)
        assert sorted(i for i, _ in store.list()) == sorted([ids[0], ids[1], ids[3]])
        assert store.get(ids[1])[0] == self.make_item("a-new-uid", "changed")

    def test_list_is_a_snapshot(self, store: Store) -> None:
        for n in range(3):
            store.add(self.make_item(f"l-{n}", f"item {n}"))
        listing = store.list()
        for n, (item_id, _) in enumerate(listing):
            store.add(self.make_item(f"l-new-{n}", "added while listing"))
            store.get(item_id)
        assert len(list(store.list())) == 6

    # ------------------------------------------------------------ model check
    def test_state_machine(self) -> None:
        suite = self

        class StoreMachine(RuleBasedStateMachine):
            """A store against a dict of id -> (data, etag)."""

            items = Bundle("items")

            def __init__(self) -> None:
                super().__init__()
                self._tmp = tempfile.TemporaryDirectory(prefix="syncmld-conf-")
                self.store = suite.new_store(Path(self._tmp.name))
                self.model: dict[str, tuple[str, str]] = {}
                self.counter = 0

            def teardown(self) -> None:
                self._tmp.cleanup()

            def _uid(self) -> str:
                self.counter += 1
                return f"uid-{self.counter}"

            @rule(target=items, text=TEXT)
            def add(self, text: str) -> str:
                data = suite.make_item(self._uid(), text)
                item_id, etag = self.store.add(data)
                assert item_id not in self.model
                self.model[item_id] = (data, etag)
                return item_id

            @rule(item_id=items, text=TEXT)
            def replace(self, item_id: str, text: str) -> None:
                data = suite.make_item(f"r-{item_id}", text)
                if item_id not in self.model:
                    with pytest.raises(ItemNotFound):
                        self.store.replace(item_id, data, etag=None)
                    return
                old_data, etag = self.model[item_id]
                new_etag = self.store.replace(item_id, data, etag=etag)
                if data != old_data:
                    assert new_etag != etag
                self.model[item_id] = (data, new_etag)

            @rule(item_id=items, text=TEXT)
            def stale_write(self, item_id: str, text: str) -> None:
                if item_id not in self.model:
                    return
                data, etag = self.model[item_id]
                changed = suite.make_item(f"x-{self._uid()}", text + " (theirs)")
                suite.edit_behind(self.store, item_id, changed)
                _, new_etag = self.store.get(item_id)
                assert new_etag != etag
                with pytest.raises(PreconditionFailed):
                    self.store.replace(item_id, data, etag=etag)
                with pytest.raises(PreconditionFailed):
                    self.store.delete(item_id, etag=etag)
                self.model[item_id] = (changed, new_etag)

            @rule(item_id=consumes(items))
            def delete(self, item_id: str) -> None:
                if item_id not in self.model:
                    with pytest.raises(ItemNotFound):
                        self.store.delete(item_id, etag=None)
                    return
                _, etag = self.model.pop(item_id)
                self.store.delete(item_id, etag=etag)

            @invariant()
            def matches_model(self) -> None:
                assert dict(self.store.list()) == {i: e for i, (_, e) in self.model.items()}
                for item_id, (data, etag) in self.model.items():
                    assert self.store.get(item_id) == (data, etag)

        current = settings()
        run_state_machine_as_test(
            StoreMachine,
            settings=settings(
                current,
                max_examples=min(current.max_examples, suite.machine_examples),
                stateful_step_count=suite.machine_steps,
            ),
        )
