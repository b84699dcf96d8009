"""The mutation fuzzer (fuzz/fuzz_decode.py) for a short, seeded run: no input
may make a decoder raise anything but RemoteProtocolError, or hang."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

FUZZER = Path(__file__).resolve().parent.parent / "fuzz" / "fuzz_decode.py"
SECONDS = 10.0
SEED = 20240315


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzz_decode", FUZZER)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fuzz() -> ModuleType:
    return _load()


def test_mutation_fuzzing_finds_no_invariant_violation(fuzz: ModuleType, tmp_path: Path) -> None:
    log: list[str] = []
    report = fuzz.run(seconds=SECONDS, seed=SEED, crash_dir=tmp_path, log=log.append)
    assert report.violations == [], "\n".join(log)
    assert not list(tmp_path.iterdir())
    corpus = fuzz.load_corpus()
    # It did real work: every seed, then many mutants, some of them still
    # valid and most of them refused in different ways.
    assert report.runs > len(corpus) + 500
    assert report.outcomes["accepted"] > 50
    assert report.outcomes["refused"] > 500
    assert len([o for o in report.outcomes if o.startswith("refused ")]) >= 2


def test_the_same_seed_gives_the_same_inputs(fuzz: ModuleType) -> None:
    import random

    corpus = fuzz.load_corpus()
    first = [fuzz.mutate(corpus[i % len(corpus)], corpus, random.Random(7)) for i in range(20)]
    again = [fuzz.mutate(corpus[i % len(corpus)], corpus, random.Random(7)) for i in range(20)]
    assert first == again
    assert any(m != corpus[i % len(corpus)] for i, m in enumerate(first))


def test_a_violation_is_reported_and_saved(
    fuzz: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The harness itself: an exception other than RemoteProtocolError counts."""

    def broken(data: bytes) -> object:
        raise IndexError("decoder bug")

    monkeypatch.setattr(fuzz, "decode_message", broken)
    log: list[str] = []
    report = fuzz.run(runs=3, seed=1, corpus=[b"<SyncML/>"], crash_dir=tmp_path, log=log.append)
    assert len(report.violations) == 3
    assert report.violations[0].entry == "decode_message"
    assert "IndexError: decoder bug" in report.violations[0].error
    assert len(list(tmp_path.iterdir())) == 3


def test_a_hang_is_a_violation(fuzz: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    def hangs(data: bytes) -> object:
        while True:
            pass

    monkeypatch.setattr(fuzz, "decode_message", hangs)
    outcome, violations = fuzz.check(b"<SyncML/>", call_timeout=0.2)
    assert outcome == "violation"
    assert "timeout" in violations[0].error


def test_the_time_bound_keeps_an_outer_alarm(fuzz: ModuleType) -> None:
    """pytest-timeout arms SIGALRM too: the per-call bound must not disarm it."""
    import signal

    fired: list[int] = []
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: fired.append(signum))
    try:
        signal.setitimer(signal.ITIMER_REAL, 30.0)
        fuzz.check(b"<SyncML/>", call_timeout=1.0)
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 25.0 < left <= 30.0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert fired == []
