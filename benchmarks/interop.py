"""syncmld's HTTP server against SyncEvolution 2.0's, with SyncEvolution's client driving both.

Usage: ``python benchmarks/interop.py --items 5000 [--items 20000] [--encoding xml|wbxml]``

For each N, in one go: N generated contacts (realistic vCard 3.0 of 400-600
bytes, deterministic) are uploaded by a SyncEvolution client in a slow sync

* to ``syncmld serve-http`` (a subprocess: vdir store, SQLite state), then
* to SyncEvolution's own HTTP server (private ``dbus-daemon``,
  ``syncevo-dbus-server`` and its per-session ``syncevo-dbus-helper``,
  ``syncevo-http-server``),

and then each gets a two-way sync in which nothing changed.  Both sides run
as SyncEvolution's performance baseline did: SyncML 1.2, MD5 authentication,
file backend with ``text/vcard``, logging off (``loglevel=1``,
``logdir=none``), stock one-second pause after writing kept.

Printed per server and sync: wall time of the client run, server CPU seconds
(user + system from ``/proc``: our server process; for SyncEvolution its
three processes plus the reaped session helpers), the server's peak RSS
(ours: the process's ``VmHWM``; SyncEvolution: the session helper's, sampled
at 20 Hz), the client's CPU; then the ratios syncmld/SyncEvolution and the
targets (server CPU <= 0.25x at N=5,000 and <= 0.1x at N=20,000; no-change
wall <= 0.5x).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.interop.harness import (  # noqa: E402
    SeClient,
    SeServer,
    Shims,
    build_shims,
    free_port,
    missing_server,
)

TICK = os.sysconf("SC_CLK_TCK")
USER, PASSWORD = "bench", "bench-secret"

FIRST = ["John", "Mary", "Peter", "Anna", "Thomas", "Laura", "Michael", "Sarah", "David", "Emma",
         "James", "Olivia", "Robert", "Sophia", "William", "Julia", "Daniel", "Lena", "Paul"]
LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson",
        "Taylor", "Moore", "Martin", "Jackson", "White", "Harris", "Clark", "Lewis", "Walker"]
FIRST_INTL = ["Jürgen", "Zoë", "José", "Łukasz", "Søren", "François", "Björn", "太郎", "Андрей"]
LAST_INTL = ["Müller", "Groß", "Núñez", "Wałęsa", "Ødegaard", "Lefèvre", "山田", "Иванов"]
STREETS = ["Main Street", "Oak Avenue", "Hauptstraße", "Baker Street", "Rue de la Paix",
           "Calle Mayor", "Lindenweg", "Station Road"]
CITIES = [("Springfield", "IL", "62701", "USA"), ("Berlin", "", "10115", "Germany"),
          ("München", "Bayern", "80331", "Germany"), ("London", "", "W1B 1AA", "United Kingdom"),
          ("Zürich", "ZH", "8001", "Switzerland"), ("Kraków", "", "31-001", "Poland")]
COMPANIES = ["Acme Corp", "Globex", "Initech", "Umbrella GmbH", "Hooli", "Soylent AG"]
NOTES = [
    "Met at the trade fair in Hannover; interested in the new product line, call back in spring.",
    "Prefers e-mail over phone. Birthday card every year, likes jazz and Italian food.",
    "Former colleague from the Berlin office; now working remotely, usually available mornings.",
    "Key account with quarterly review meetings; the assistant handles the calendar.",
    "Supplier contact for spare parts, order numbers look like ABC-1234, delivery in 5 days.",
]


def _esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")


def _fold(line: str) -> list[str]:
    out, cur, limit = [], b"", 75
    for ch in line:
        enc = ch.encode()
        if len(cur) + len(enc) > limit:
            out.append(cur.decode())
            cur = b" "
        cur += enc
    out.append(cur.decode())
    return out


def contact(n: int) -> bytes:
    """Contact ``n``: a vCard 3.0 of about 400-600 bytes, the same for the same ``n``."""
    r = random.Random(f"interop-{n}")
    intl = r.random() < 0.08
    first = r.choice(FIRST_INTL if intl else FIRST)
    last = r.choice(LAST_INTL if intl else LAST)
    street, (city, region, code, country) = r.choice(STREETS), r.choice(CITIES)
    mail = f"user{n}" if intl else f"{first}.{last}".lower()
    lines = [
        "BEGIN:VCARD",
        "VERSION:3.0",
        f"UID:{r.getrandbits(64):016x}-{n:06d}",
        f"N:{_esc(last)};{_esc(first)};;;",
        f"FN:{_esc(first)} {_esc(last)}",
        f"ORG:{_esc(r.choice(COMPANIES))};Sales",
        f"TEL;TYPE=CELL:+49 {r.randint(150, 179)} {r.randint(1000000, 99999999)}",
        f"TEL;TYPE=WORK,VOICE:+44 {r.randint(20, 99)} {r.randint(1000000, 9999999)}",
        f"EMAIL;TYPE=INTERNET,WORK:{mail}@example.org",
        (
            f"ADR;TYPE=HOME:;;{_esc(street)} {r.randint(1, 250)};{_esc(city)};{_esc(region)};"
            f"{code};{_esc(country)}"
        ),
    ]
    if r.random() < 0.5:
        lines.append(f"TITLE:{r.choice(['Manager', 'Engineer', 'Director', 'Analyst'])}")
    if r.random() < 0.3:
        lines.append(f"BDAY:{r.randint(1950, 2000)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}")
    lines += [
        f"NOTE:{_esc(r.choice(NOTES))}",
        f"REV:2024{r.randint(1, 12):02d}{r.randint(1, 28):02d}T120000Z",
        "END:VCARD",
    ]
    folded = [part for line in lines for part in _fold(line)]
    return ("\r\n".join(folded) + "\r\n").encode()


def generate(folder: Path, count: int) -> int:
    """Write ``count`` contacts, one file each; returns the total size."""
    folder.mkdir(parents=True, exist_ok=True)
    total = 0
    for n in range(count):
        data = contact(n)
        total += len(data)
        (folder / f"c{n:06d}.vcf").write_bytes(data)
    return total


# --------------------------------------------------------------------------- /proc


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """User + system CPU of a process (and of its reaped children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / TICK


def peak_rss_mb(pid: int) -> float:
    """``VmHWM`` of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children_of(pid: int) -> list[int]:
    """Process ids whose parent is ``pid``."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


class HelperSampler:
    """Samples the peak RSS of SyncEvolution's session helpers at 20 Hz."""

    def __init__(self, parent: int) -> None:
        self.parent = parent
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for child in children_of(self.parent):
                with contextlib.suppress(OSError):  # the helper just exited
                    self.peak = max(self.peak, peak_rss_mb(child))
            self._stop.wait(0.05)

    def __enter__(self) -> HelperSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# --------------------------------------------------------------------------- servers


# ``python -m syncmld`` without a ``__main__`` module: the console script's entry point.
_SERVE = "import sys; from syncmld.cli import main; sys.exit(main(sys.argv[1:]))"


class OurServer:
    """``syncmld serve-http`` in a subprocess, with a vdir store and SQLite state."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.store = root / "contacts"
        config = root / "syncmld.toml"
        config.write_text(
            f'[state]\nurl = "sqlite:///{root / "state.db"}"\n\n'
            f'[stores.contacts]\nkind = "contacts"\npath = "{self.store}"\n\n'
            f'[http]\nhost = "127.0.0.1"\nport = {self.port}\nauth = "md5"\n\n'
            f'[accounts]\n{USER} = "{PASSWORD}"\n'
        )
        self.log = root / "serve.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _SERVE, "serve-http", "--config", str(config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + 30
        while "serving SyncML" not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"syncmld serve-http did not start:\n{self.log.read_text()}")
            time.sleep(0.05)

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def peak_rss(self) -> float:
        return peak_rss_mb(self.proc.pid)

    def items(self) -> int:
        return sum(1 for p in self.store.iterdir() if p.suffix == ".vcf")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class TheirServer:
    """SyncEvolution's HTTP server (three processes plus one helper per session)."""

    def __init__(self, root: Path, device_id: str) -> None:
        self.se = SeServer(root, user=USER, password=PASSWORD, loglevel=1, logdir_none=True)
        self.se.configure()
        self.se.add_client(device_id)
        self.se.start()
        self.url = self.se.url
        self.sampler: HelperSampler | None = None

    def _settle(self) -> None:
        """Wait until the session helper has exited (its CPU is then in cutime)."""
        deadline = time.monotonic() + 10
        while children_of(self.se.pids["dbus-server"]) and time.monotonic() < deadline:
            time.sleep(0.05)

    def cpu(self) -> float:
        self._settle()
        pids = self.se.pids
        return (
            cpu_seconds(pids["bus"])
            + cpu_seconds(pids["dbus-server"], children=True)
            + cpu_seconds(pids["http-server"])
        )

    def peak_rss(self) -> float:
        return self.sampler.peak if self.sampler else 0.0

    def items(self) -> int:
        return len(self.se.items("addressbook"))

    def stop(self) -> None:
        self.se.stop()


# --------------------------------------------------------------------------- runs


@dataclass
class Figures:
    wall: float
    server_cpu: float
    peak_rss: float
    client_cpu: float
    items: int


def client_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_sync(client: SeClient, server: OurServer | TheirServer, mode: str) -> Figures:
    # SyncEvolution's file backend pauses until a second has passed since its
    # last write; let that second pass first, so no sync pays for the one before.
    time.sleep(1.5)
    before_server, before_client = server.cpu(), client_cpu()
    result = asyncio.run(client.sync(mode, ["addressbook"]))
    if not result.ok:
        raise SystemExit(f"{mode} sync failed: {result.describe()}")
    return Figures(
        wall=result.wall,
        server_cpu=server.cpu() - before_server,
        peak_rss=server.peak_rss(),
        client_cpu=client_cpu() - before_client,
        items=server.items(),
    )


def make_client(
    root: Path, shims: Shims, url: str, uri: str, *, data: Path, encoding: str
) -> SeClient:
    client = SeClient(
        root,
        shims,
        url=url,
        device_id="bench-client",
        uris={"addressbook": uri},
        encoding=encoding,
        user=USER,
        password=PASSWORD,
        auth="md5",
        loglevel=1,
        nosleep=False,
        logdir_none=True,
        timeout=3600,
    )
    client.configure()
    shutil.rmtree(client.data("addressbook"))
    shutil.copytree(data, client.data("addressbook"))
    return client


def line(name: str, mode: str, n: int, f: Figures) -> str:
    return (
        f"{name:<14} {mode:<9} N={n:<6} wall={f.wall:7.2f}s server_cpu={f.server_cpu:7.2f}s "
        f"server_peak_rss={f.peak_rss:6.1f}MB client_cpu={f.client_cpu:6.2f}s items={f.items}"
    )


def bench(n: int, encoding: str, shims: Shims, work: Path) -> None:
    data = work / f"data-{n}"
    size = generate(data, n)
    print(f"# N={n}: {size / 1e6:.2f} MB of vCards, {size / n:.0f} bytes each on average, "
          f"{encoding.upper()}, SyncML 1.2, md5", flush=True)
    results: dict[str, dict[str, Figures]] = {}

    ours = OurServer(_fresh(work / "ours"))
    try:
        client = make_client(
            _fresh(work / "client-ours"), shims, ours.url, "contacts", data=data, encoding=encoding
        )
        results["syncmld"] = {
            "slow": run_sync(client, ours, "slow"),
            "nochange": run_sync(client, ours, "two-way"),
        }
    finally:
        ours.stop()
    for mode, f in results["syncmld"].items():
        print(line("syncmld", mode, n, f), flush=True)

    theirs = TheirServer(_fresh(work / "theirs"), "bench-client")
    try:
        client = make_client(
            _fresh(work / "client-theirs"),
            shims,
            theirs.url,
            "addressbook",
            data=data,
            encoding=encoding,
        )
        figures = {}
        for mode, se_mode in (("slow", "slow"), ("nochange", "two-way")):
            with HelperSampler(theirs.se.pids["dbus-server"]) as sampler:
                theirs.sampler = sampler
                figures[mode] = run_sync(client, theirs, se_mode)
        results["SyncEvolution"] = figures
    finally:
        theirs.stop()
    for mode, f in results["SyncEvolution"].items():
        print(line("SyncEvolution", mode, n, f), flush=True)

    for mode in ("slow", "nochange"):
        a, b = results["syncmld"][mode], results["SyncEvolution"][mode]
        if a.items != n or b.items != n:
            print(f"! {mode}: server item counts {a.items} / {b.items}, expected {n}")
        print(
            f"ratio syncmld/SyncEvolution {mode:<9} N={n:<6} wall={a.wall / b.wall:.3f} "
            f"server_cpu={a.server_cpu / max(b.server_cpu, 0.01):.3f} "
            f"server_peak_rss={a.peak_rss / max(b.peak_rss, 0.1):.2f}",
            flush=True,
        )
    cpu_target = 0.25 if n <= 5000 else 0.1
    cpu_ratio = results["syncmld"]["slow"].server_cpu / results["SyncEvolution"]["slow"].server_cpu
    wall_ratio = results["syncmld"]["nochange"].wall / results["SyncEvolution"]["nochange"].wall
    print(f"target slow-sync server CPU <= {cpu_target}x: {cpu_ratio:.3f}x "
          f"{'met' if cpu_ratio <= cpu_target else 'MISSED'}")
    print(f"target no-change wall <= 0.5x: {wall_ratio:.3f}x "
          f"{'met' if wall_ratio <= 0.5 else 'MISSED'}", flush=True)


def _fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, action="append", help="contacts (repeatable)")
    parser.add_argument("--encoding", choices=("xml", "wbxml"), default="wbxml")
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep it")
    args = parser.parse_args()
    reason = missing_server()
    if reason:
        print(f"interop benchmark: {reason}", file=sys.stderr)
        return 2
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="syncmld-interop-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        shims = build_shims(work / "shims")
        for n in args.items or [5000]:
            bench(n, args.encoding, shims, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
