"""Fuzz the decoders: any input is accepted or refused with RemoteProtocolError.

Usage::

    python fuzz/fuzz_decode.py [--seconds N] [--seed S] [--runs N] [--crash-dir DIR]
    python fuzz/fuzz_decode.py --atheris [libFuzzer options ...]

The plain mode is a seeded, time-boxed mutation fuzzer with no dependencies.
Its corpus is read at run time from ``tests/data/vectors`` (every ``.xml``,
``.wbxml`` and ``.ddf`` file; nothing is copied into the repository).  Each
round takes one or two corpus documents and mutates them (bit flips, byte
insertion and deletion, chunk duplication, splicing, truncation, emptying
one element's text, and WBXML-aware edits of the header fields and of
OPAQUE/STR_T length and index fields), then feeds the result to
:func:`check`.

The invariant (:func:`check`): ``decode_document`` + ``validate_document``
and ``decode_message`` each either return or raise
:class:`~syncmld.protocol.errors.RemoteProtocolError`, nothing else, and each
call returns within ``--call-timeout`` seconds (enforced with ``SIGALRM``,
so a hang is caught too).  A violation is printed with its traceback and the
input is written to ``--crash-dir`` (default ``fuzz/crashes``); the exit
status is 1 when there was any.

``--atheris`` runs :func:`check` under atheris (coverage-guided libFuzzer)
instead; atheris is optional and imported only then.  Unless a corpus
directory is given, the vectors are written to a temporary directory that
libFuzzer starts from.
"""

from __future__ import annotations

import argparse
import random
import re
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from syncmld.protocol.codec import decode_document, decode_message, validate_document
from syncmld.protocol.errors import RemoteProtocolError

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "tests" / "data" / "vectors"
SUFFIXES = (".xml", ".wbxml", ".ddf")


# --- the invariant --------------------------------------------------------------------


class CallTimeout(Exception):
    """A decoder call ran past its time bound."""


@contextmanager
def time_bound(seconds: float) -> Iterator[None]:
    """Raise :class:`CallTimeout` in the block after ``seconds`` (main thread only)."""

    def expired(signum: int, frame: object) -> None:
        raise CallTimeout(f"call still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    started = time.monotonic()
    # An alarm already set (pytest-timeout uses SIGALRM too) is put back after.
    outer_delay, outer_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_delay:
            left = outer_delay - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001), outer_interval)


@dataclass
class Violation:
    """An input that broke the invariant."""

    data: bytes
    entry: str
    error: str


def check(data: bytes, *, call_timeout: float = 2.0) -> tuple[str, list[Violation]]:
    """Feed ``data`` to the decoders; return the outcome and any violations.

    The outcome is ``"accepted"``, ``"refused <status>"`` (of the first
    entry point) or ``"violation"``.
    """

    def document() -> object:
        return validate_document(decode_document(data))

    def message() -> object:
        return decode_message(data)

    outcome = ""
    violations = []
    entries: tuple[tuple[str, Callable[[], object]], ...] = (
        ("decode_document+validate_document", document),
        ("decode_message", message),
    )
    for name, call in entries:
        try:
            with time_bound(call_timeout):
                call()
            result = "accepted"
        except RemoteProtocolError as exc:
            result = f"refused {exc.status}"
            if not isinstance(exc.status, int) or not 100 <= exc.status <= 599:
                violations.append(Violation(data, name, f"bad status {exc.status!r}"))
            if exc.offset is not None and not 0 <= exc.offset <= max(len(data), 1 << 24):
                violations.append(Violation(data, name, f"bad offset {exc.offset!r}"))
        except CallTimeout as exc:
            result = "violation"
            violations.append(Violation(data, name, f"timeout: {exc}"))
        except Exception:  # the invariant: nothing else may escape
            result = "violation"
            violations.append(Violation(data, name, traceback.format_exc()))
        outcome = outcome or result
    return ("violation" if violations else outcome), violations


# --- corpus and mutations -------------------------------------------------------------------


def load_corpus(root: Path = VECTORS) -> list[bytes]:
    """Every document under ``root`` (read now, never copied)."""
    corpus = [p.read_bytes() for p in sorted(root.rglob("*")) if p.suffix in SUFFIXES]
    if not corpus:
        raise SystemExit(f"no seed documents under {root}")
    return corpus


#: Bytes and strings that matter to the two codecs.
WBXML_TOKENS = (
    b"\x00", b"\x01", b"\x02", b"\x03", b"\x04", b"\x40", b"\x43", b"\x44", b"\x80",
    b"\x83", b"\x84", b"\xc3", b"\xc4", b"\x7f", b"\xff", b"\x8f\xff\xff\xff\x7f",
    b"\x00\x01", b"\x00\x02", b"\x00\x07", b"\xc3\x00", b"\x6d", b"\x4f", b"\x12",
)  # fmt: skip
XML_TOKENS = (
    b"<", b">", b"&", b"&amp;", b"&#0;", b"&#x110000;", b"&foo;", b"<![CDATA[", b"]]>",
    b"<!--", b"-->", b"<?pi?>", b"<!ENTITY a 'b'>", b"<!DOCTYPE SyncML [", b"]>",
    b'xmlns="x"', b"<Data>", b"</Data>", b"<Item>", b"</Item>", b"<CmdID>", b"</CmdID>",
    b"<DevInf xmlns='syncml:devinf'>", b"</DevInf>", b"<Anchor>", b"\r\n", b"\x00", b"\xff",
)  # fmt: skip
MAX_INPUT = 256 * 1024


def _read_mb(data: bytes, i: int) -> tuple[int, int] | None:
    """An mb_u_int32 at ``i``: (value, offset after it), or None."""
    value = 0
    for j in range(i, min(i + 5, len(data))):
        value = (value << 7) | (data[j] & 0x7F)
        if not data[j] & 0x80:
            return value, j + 1
    return None


def _mb(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def _header_fields(data: bytes) -> list[tuple[int, int, int]]:
    """(start, end, value) of the WBXML header's mb_u_int32 fields: public id,
    its string table index (when the id is 0), charset, string table length."""
    fields: list[tuple[int, int, int]] = []
    if len(data) < 4 or not 1 <= data[0] <= 3:
        return fields
    i = 1
    count = 3
    while len(fields) < count:
        got = _read_mb(data, i)
        if got is None:
            break
        fields.append((i, got[1], got[0]))
        if len(fields) == 1 and got[0] == 0:
            count = 4
        i = got[1]
    return fields


def _tweak(value: int, rng: random.Random, size: int) -> int:
    return rng.choice(
        (0, 1, value - 1, value + 1, value * 2, size, size + 1, 0x7F, 0x80, 0x3FFF, 0xFFFFFFFF)
    ) % (1 << 32)


def _empty_a_text(buf: bytearray, wbxml: bool, rng: random.Random) -> None:
    """Make one text empty or blank: ``>1.2<`` -> ``><`` (XML), ``03 "1.2" 00``
    -> ``03 00`` (WBXML STR_I).  Required values that are present but empty
    are a classic gap between a parser and a model."""
    if wbxml:
        starts = [i for i, b in enumerate(buf) if b == 0x03]
        if starts:
            at = rng.choice(starts) + 1
            end = buf.find(0, at)
            if end > at:
                buf[at:end] = rng.choice((b"", b" ", b"\r\n"))
        return
    spans = [m.span(1) for m in re.finditer(rb">([^<>]{1,64})<", buf)]
    if spans:
        a, b = rng.choice(spans)
        buf[a:b] = rng.choice((b"", b" ", b"\n\t"))


def mutate(data: bytes, corpus: list[bytes], rng: random.Random) -> bytes:
    """One to four random mutations of ``data``."""
    buf = bytearray(data)
    wbxml = bool(buf) and 1 <= buf[0] <= 3
    for _ in range(rng.randint(1, 4)):
        n = len(buf)
        op = rng.randrange(12)
        if op == 0 and n:  # bit flips
            for _ in range(rng.randint(1, 8)):
                buf[rng.randrange(n)] ^= 1 << rng.randrange(8)
        elif op == 1:  # insert a byte or a token
            tokens = WBXML_TOKENS if wbxml else XML_TOKENS
            ins = rng.choice(tokens) if rng.random() < 0.7 else bytes((rng.randrange(256),))
            at = rng.randint(0, n)
            buf[at:at] = ins
        elif op == 2 and n:  # delete bytes
            at = rng.randrange(n)
            del buf[at : at + rng.choice((1, 1, 2, 4, 16, 256))]
        elif op == 3 and n:  # duplicate a chunk
            at = rng.randrange(n)
            chunk = buf[at : at + rng.randint(1, 512)]
            to = rng.randint(0, n)
            buf[to:to] = chunk * rng.choice((1, 2, 8))
        elif op == 4:  # splice with another document
            other = rng.choice(corpus)
            cut = rng.randint(0, n)
            buf = buf[:cut] + other[rng.randint(0, len(other)) :]
        elif op == 5 and n:  # truncate
            del buf[rng.randint(0, n - 1) :]
        elif op == 6 and n:  # overwrite with a random or boundary byte
            buf[rng.randrange(n)] = rng.choice((0x00, 0x01, 0x3F, 0x40, 0x7F, 0x80, 0xC3, 0xFF))
        elif op == 7 and wbxml:  # a header field: public id, index, charset, table length
            fields = _header_fields(bytes(buf))
            if fields:
                start, end, value = rng.choice(fields)
                buf[start:end] = _mb(_tweak(value, rng, n))
        elif op in (8, 9) and wbxml:  # the length of an OPAQUE / the index of a STR_T
            token = 0xC3 if op == 8 else rng.choice((0x83, 0x04, 0x80))
            spots = [i for i, b in enumerate(buf) if b == token]
            if spots:
                at = rng.choice(spots)
                got = _read_mb(bytes(buf), at + 1)
                if got is not None:
                    buf[at + 1 : got[1]] = _mb(_tweak(got[0], rng, n))
        elif op == 10 and n:  # swap two chunks
            a, b = sorted((rng.randrange(n), rng.randrange(n)))
            k = rng.randint(1, 64)
            buf[a : a + k], buf[b : b + k] = buf[b : b + k], buf[a : a + k]
        elif op == 11 and n:  # empty (or blank) the text of one element
            _empty_a_text(buf, wbxml, rng)
        if len(buf) > MAX_INPUT:
            del buf[MAX_INPUT:]
    return bytes(buf)


# --- the plain fuzzer --------------------------------------------------------------------


@dataclass
class Report:
    """What a run did."""

    runs: int = 0
    seconds: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)
    violations: list[Violation] = field(default_factory=list)


def run(
    *,
    seconds: float = 60.0,
    seed: int = 0,
    runs: int | None = None,
    call_timeout: float = 2.0,
    corpus: list[bytes] | None = None,
    crash_dir: Path | None = None,
    log: Callable[[str], None] = print,
) -> Report:
    """Mutate and check until ``seconds`` pass (or ``runs`` inputs were tried)."""
    rng = random.Random(seed)
    corpus = corpus if corpus is not None else load_corpus()
    report = Report()
    start = time.perf_counter()
    # First the seeds themselves, then mutants.
    pending = list(corpus)
    while True:
        elapsed = time.perf_counter() - start
        if (runs is not None and report.runs >= runs) or (runs is None and elapsed >= seconds):
            break
        data = pending.pop() if pending else mutate(rng.choice(corpus), corpus, rng)
        outcome, violations = check(data, call_timeout=call_timeout)
        report.runs += 1
        report.outcomes[outcome.split()[0]] += 1
        if outcome.startswith("refused"):
            report.outcomes[outcome] += 1
        for v in violations:
            report.violations.append(v)
            log(f"VIOLATION in {v.entry} (input {len(v.data)} bytes):\n{v.error}")
            if crash_dir is not None:
                crash_dir.mkdir(parents=True, exist_ok=True)
                path = crash_dir / f"crash-{seed}-{report.runs}.bin"
                path.write_bytes(v.data)
                log(f"input written to {path}")
    report.seconds = time.perf_counter() - start
    return report


def _atheris(argv: list[str], call_timeout: float, crash_dir: Path) -> int:
    try:
        import atheris  # noqa: PLC0415 - optional, not a dependency of syncmld
    except ImportError:
        print("atheris is not installed (pip install atheris)", file=sys.stderr)
        return 2

    atheris.instrument_all()  # the decoders are loaded: instrument them

    def one_input(data: bytes) -> None:
        _, violations = check(bytes(data), call_timeout=call_timeout)
        if violations:
            raise AssertionError(f"{violations[0].entry}: {violations[0].error}")

    if not any(a.startswith("-artifact_prefix=") for a in argv):
        crash_dir.mkdir(parents=True, exist_ok=True)
        argv = [*argv, f"-artifact_prefix={crash_dir}/"]
    corpus_given = any(not a.startswith("-") for a in argv)
    with tempfile.TemporaryDirectory(prefix="syncmld-fuzz-") as tmp:
        if not corpus_given:
            for i, doc in enumerate(load_corpus()):
                (Path(tmp) / f"seed-{i:04d}").write_bytes(doc)
            argv = [*argv, tmp]
        atheris.Setup([sys.argv[0], *argv], one_input)
        atheris.Fuzz()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="time budget (default 60)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    parser.add_argument("--runs", type=int, default=None, help="stop after this many inputs")
    parser.add_argument("--call-timeout", type=float, default=2.0, help="bound per call (s)")
    parser.add_argument("--crash-dir", type=Path, default=Path(__file__).parent / "crashes")
    parser.add_argument("--atheris", action="store_true", help="run under atheris instead")
    args, rest = parser.parse_known_args(argv)
    if args.atheris:
        return _atheris(rest, args.call_timeout, args.crash_dir)
    if rest:
        parser.error(f"unknown arguments: {' '.join(rest)}")
    seed = args.seed if args.seed is not None else random.randrange(1 << 31)
    budget = f"{args.runs} inputs" if args.runs is not None else f"{args.seconds:g} s"
    print(f"fuzzing for {budget} with seed {seed}", flush=True)
    report = run(
        seconds=args.seconds,
        seed=seed,
        runs=args.runs,
        call_timeout=args.call_timeout,
        crash_dir=args.crash_dir,
    )
    rate = report.runs / report.seconds if report.seconds else 0.0
    print(f"{report.runs} inputs in {report.seconds:.1f} s ({rate:.0f}/s)")
    for outcome, count in sorted(report.outcomes.items()):
        print(f"  {outcome:<14} {count}")
    print(f"{len(report.violations)} violations")
    return 1 if report.violations else 0


if __name__ == "__main__":
    raise SystemExit(main())
