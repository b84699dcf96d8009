"""Time the state repository: save_session and load_peer for 1k and 20k items.

Usage: ``python benchmarks/state.py [--repeat N] [SIZE ...]``

Each size gets a fresh SQLite database in a temporary directory (WAL, the
settings the daemon uses).  One peer with one datastore pair of SIZE items
is stored and loaded again; the times printed are the median and the best of
``--repeat`` runs of:

* ``first save``: every item is new (all inserts);
* ``save, unchanged``: the same state again (reads and compares, no writes);
* ``save, 1% changed``: a session that added, changed and deleted a few;
* ``save, all changed``: every etag changed (all updates);
* ``load``: :meth:`StateRepository.load_peer`.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from syncmld.engine.state import ItemState, PairState, PeerState, RunRecord, StoreCounts
from syncmld.state import StateRepository


def _peer(dev_id: str, items: dict[str, ItemState]) -> PeerState:
    pair = PairState(
        local_uri="contacts",
        remote_uri="./contacts",
        local_anchor="20240601T120000Z",
        remote_anchor="42",
        items=items,
        last_mode=200,
    )
    return PeerState(dev_id=dev_id, nonce="bm9uY2U=", pairs={"contacts": pair})


def _items(size: int, etag: str = "e1") -> dict[str, ItemState]:
    return {
        f"{i:08d}.vcf": ItemState(f"{i:08d}.vcf", str(i), f"{etag}-{i}", f"{i:064x}")
        for i in range(size)
    }


def _one_percent_changed(items: dict[str, ItemState]) -> dict[str, ItemState]:
    changed = dict(items)
    step = 300  # every 300th item: added, changed or deleted -> ~1 %
    for n, key in enumerate(list(items)[::step]):
        if n % 3 == 0:
            del changed[key]
        elif n % 3 == 1:
            changed[key] = ItemState(key, items[key].remote_id, "changed", items[key].digest)
        else:
            new = f"new-{key}"
            changed[new] = ItemState(new, None, "fresh", "0" * 64)
    return changed


def _time(action: Callable[[], object], setup: Callable[[], object], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        setup()
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return times


def bench(size: int, repeat: int) -> list[tuple[str, list[float]]]:
    """Run every measurement for ``size`` items; return (label, seconds) rows."""
    base = _items(size)
    variants = {
        "unchanged": base,
        "1% changed": _one_percent_changed(base),
        "all changed": _items(size, etag="e2"),
    }
    results: list[tuple[str, list[float]]] = []
    with (
        tempfile.TemporaryDirectory(prefix="syncmld-bench-") as tmp,
        StateRepository(f"sqlite:///{Path(tmp) / 'state.db'}") as repo,
    ):
        counter = iter(range(10**9))

        def run(dev_id: str) -> RunRecord:
            now = float(next(counter))
            return RunRecord(
                dev_id=dev_id,
                role="server",
                started=now,
                finished=now + 1,
                stores=(StoreCounts(local_uri="contacts"),),
            )

        # first save: a new device each time
        names = iter(f"fresh-{n}" for n in range(repeat))

        def first() -> None:
            dev_id = next(names)
            repo.save_session(_peer(dev_id, base), run(dev_id))

        results.append(("first save", _time(first, lambda: None, repeat)))

        dev = "bench"

        def saver(items: dict[str, ItemState]) -> Callable[[], None]:
            return lambda: repo.save_session(_peer(dev, items), run(dev))

        # Each timed save starts from the base state.
        for label, items in variants.items():
            results.append((f"save, {label}", _time(saver(items), saver(base), repeat)))
        results.append(("load", _time(lambda: repo.load_peer(dev), lambda: None, repeat)))
        loaded = repo.load_peer(dev)
        assert loaded is not None and len(loaded.pairs["contacts"].items) == size
    return results


def main() -> None:
    """Parse the arguments and print one table per size."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[1000, 20000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    for size in args.sizes:
        print(f"{size} items (median / best of {args.repeat}):")
        for label, times in bench(size, args.repeat):
            median = statistics.median(times) * 1000
            best = min(times) * 1000
            print(f"  {label:20s} {median:8.1f} ms {best:8.1f} ms")


if __name__ == "__main__":
    main()
