"""The ``syncmld`` command line.

Subcommands:

``syncmld decode FILE|-``
    Print a SyncML message or DevInf document (XML or WBXML) as indented XML.
``syncmld encode --wbxml|--xml FILE|-``
    Convert a document to WBXML or XML (written to standard output or ``-o``).
``syncmld sync [--config FILE] SERVER [--mode MODE] [--store NAME ...]``
    Run one client session with a SyncML server of the configuration file;
    print one line per datastore.
``syncmld serve-http [--config FILE] [--host HOST] [--port PORT]``
    Serve the configured stores to SyncML clients over HTTP until Ctrl-C.
``syncmld run [--config FILE]``
    The daemon: every configured listener, the D-Bus API, automatic sync
    when a phone connects (:mod:`syncmld.daemon`), until SIGTERM/SIGINT.

Bad input is reported on one line naming the byte offset, with exit status 1;
usage errors exit with 2.  ``sync`` exits with 0 only when every datastore
synced, 1 otherwise, and 2 for configuration errors.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import logging
import signal
import ssl
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from syncmld import __version__
from syncmld.errors import SyncmlError
from syncmld.protocol.codec import (
    Document,
    Encoding,
    decode_document,
    encode_document,
    validate_document,
)
from syncmld.protocol.codes import SyncMode
from syncmld.protocol.errors import ProtocolError
from syncmld.protocol.tree import Node

if TYPE_CHECKING:
    from syncmld.config import Config, RemoteServerConfig
    from syncmld.engine.state import StoreCounts
    from syncmld.transports.http import HttpServer

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def _read_input(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise SyncmlError(f"cannot read {path}: {exc.strerror}") from None


def _load(path: str) -> Document:
    data = _read_input(path)
    doc = decode_document(data)
    validate_document(doc)
    return doc


def _text_only(node: Node, notes: list[str]) -> Node:
    """Replace binary text (WBXML OPAQUE that is not text) by base64 for display."""
    if isinstance(node.text, bytes):
        notes.append(node.tag)
        return dataclasses.replace(node, text=base64.b64encode(node.text).decode("ascii"))
    if not node.children:
        return node
    return dataclasses.replace(node, children=tuple(_text_only(c, notes) for c in node.children))


def _version(doc: Document) -> str:
    return doc.version if doc.version in ("1.0", "1.1", "1.2") else "1.2"


def _cmd_decode(args: argparse.Namespace) -> int:
    doc = _load(args.file)
    notes: list[str] = []
    root = _text_only(doc.root, notes)
    out = encode_document(root, Encoding.XML, version=_version(doc), pretty=True)
    sys.stdout.buffer.write(out)
    sys.stdout.buffer.flush()
    for tag in dict.fromkeys(notes):
        print(f"syncmld: note: binary content of <{tag}> shown base64-encoded", file=sys.stderr)
    return EXIT_OK


def _cmd_encode(args: argparse.Namespace) -> int:
    doc = _load(args.file)
    encoding = Encoding.WBXML if args.wbxml else Encoding.XML
    out = encode_document(
        doc.root,
        encoding,
        version=_version(doc),
        textual_public_id=not args.numeric_public_id,
        pretty=args.pretty,
    )
    if args.output in (None, "-"):
        sys.stdout.buffer.write(out)
        sys.stdout.buffer.flush()
    else:
        try:
            with open(args.output, "wb") as f:
                f.write(out)
        except OSError as exc:
            raise SyncmlError(f"cannot write {args.output}: {exc.strerror}") from None
    return EXIT_OK


# --------------------------------------------------------------- sync, serve-http
#
# ``sync`` and ``serve-http`` need aiohttp, SQLAlchemy and the engine, which
# would more than double the start-up time of ``decode``/``encode``; they are
# imported when one of these two commands runs (hence the PLC0415 waivers).

#: Shown in --help; the real default honours $XDG_CONFIG_HOME.
_DEFAULT_CONFIG = "$XDG_CONFIG_HOME/syncmld/syncmld.toml"


class _OneLine(logging.Filter):
    """Log records with an exception become one line: message and exception, no traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info is not None and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            reason = " ".join(str(exc).split()) or type(exc).__name__
            record.msg = f"{record.getMessage()}: {reason}"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def _setup_logging(level: int) -> None:
    """syncmld's own messages at ``level``, other libraries' warnings only.

    Below DEBUG level, tracebacks are folded into one line (aiohttp logs
    some for malformed requests).
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("syncmld: %(message)s"))
    if level > logging.DEBUG:
        handler.addFilter(_OneLine())
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    logging.getLogger("syncmld").setLevel(level)


def _config(path: str | None, *, defaults_ok: bool = False) -> Config:
    """The configuration file given, else the default one.

    Raises:
        ConfigError: it cannot be read or is wrong.
    """
    from syncmld.config import ConfigError, default_config_path, load, parse  # noqa: PLC0415

    if path is not None:
        return load(path)
    default = default_config_path()
    if not default.exists() and not defaults_ok:
        raise ConfigError(
            f"no configuration file at {default} "
            "(copy config/syncmld.toml there and adapt it, or pass --config FILE)"
        )
    if not default.exists():
        # Embedded defaults: a contacts and a calendar vdir under the XDG data
        # directory, the state database under the XDG state directory, and an
        # HTTP listener on the loopback interface only.
        return parse(EMBEDDED_DEFAULTS, source=f"built-in defaults (no {default})")
    return load(default)


#: The configuration used when no file exists.
EMBEDDED_DEFAULTS = {
    "stores": {"contacts": {"kind": "contacts"}, "calendar": {"kind": "calendar"}},
    "http": {"host": "127.0.0.1", "port": 8080, "auth": "none"},
}


def _selected_stores(
    config: Config, server: RemoteServerConfig, wanted: list[str] | None
) -> list[str]:
    from syncmld.config import ConfigError  # noqa: PLC0415

    paired = [p.local for p in server.sync]
    for name in wanted or ():
        if name not in paired:
            raise ConfigError(
                f"{config.source}: servers.{server.name} has no sync pair for store {name!r} "
                f"(paired: {', '.join(paired)})"
            )
    return [name for name in paired if not wanted or name in wanted]


def _ssl_context(config: Config, server: RemoteServerConfig) -> ssl.SSLContext | None:
    from syncmld.config import ConfigError  # noqa: PLC0415

    if server.ca_file is None:
        return None
    try:
        context = ssl.create_default_context()
        context.load_verify_locations(cafile=str(server.ca_file))
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(
            f"{config.source}: servers.{server.name}.ca_file: cannot use {server.ca_file}: {reason}"
        ) from None
    return context


def _mode_name(mode: int | None) -> str:
    if mode is None:
        return "-"
    try:
        return SyncMode.from_alert(mode).value
    except ValueError:
        return str(mode)


def _store_line(counts: StoreCounts) -> str:
    status = (
        "ok" if counts.status == 200 else f"failed: {counts.message or f'status {counts.status}'}"
    )
    return (
        f"{counts.local_uri}: {_mode_name(counts.mode)}, "
        f"local {counts.local_added} added {counts.local_replaced} replaced "
        f"{counts.local_deleted} deleted, "
        f"remote {counts.remote_added} added {counts.remote_replaced} replaced "
        f"{counts.remote_deleted} deleted, "
        f"{counts.conflicts} conflicts, {status}"
    )


def _cmd_sync(args: argparse.Namespace) -> int:
    from syncmld.config import ConfigError, client_config  # noqa: PLC0415
    from syncmld.library import run_client  # noqa: PLC0415

    _setup_logging(logging.WARNING)
    try:
        config = _config(args.config)
        server = config.server(args.server)
        names = _selected_stores(config, server, args.store)
        mode = SyncMode(args.mode) if args.mode else None
        password = server.read_password()
        context = _ssl_context(config, server)
        stores = {name: config.stores[name].open() for name in names}
    except ConfigError as exc:
        print(f"syncmld: {exc}", file=sys.stderr)
        return EXIT_USAGE
    engine_config = client_config(server, stores, config, password=password, mode=mode)
    try:
        result = asyncio.run(
            run_client(engine_config, config.state_url, timeout=server.timeout, ssl_context=context)
        )
    except KeyboardInterrupt:
        print(f"syncmld: sync with {server.name} cancelled; nothing committed", file=sys.stderr)
        return EXIT_FAILURE
    run = result.run
    if not result.completed:
        print(f"syncmld: sync with {server.name} failed: {run.message}", file=sys.stderr)
        return EXIT_FAILURE
    for counts in run.stores:
        print(_store_line(counts))
    sys.stdout.flush()
    return EXIT_OK if result.ok else EXIT_FAILURE


async def _serve_until_stopped(server: HttpServer) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        await server.start()
        try:
            print(
                f"syncmld: serving SyncML on {server.url} (Ctrl-C stops)",
                file=sys.stderr,
                flush=True,
            )
            await stop.wait()
        finally:
            await server.stop()
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
    print("syncmld: stopped", file=sys.stderr, flush=True)


def _cmd_serve_http(args: argparse.Namespace) -> int:
    from syncmld.config import ConfigError  # noqa: PLC0415
    from syncmld.state.repository import StateRepository  # noqa: PLC0415
    from syncmld.transports.http import HttpServer, make_app  # noqa: PLC0415

    _setup_logging(logging.DEBUG if args.verbose else logging.INFO)
    try:
        config = _config(args.config, defaults_ok=True)
        if not config.stores:
            raise ConfigError(f"{config.source}: no [stores.<name>] table: nothing to serve")
    except ConfigError as exc:
        print(f"syncmld: {exc}", file=sys.stderr)
        return EXIT_USAGE
    stores = {name: sc.open() for name, sc in config.stores.items()}
    http = config.http
    with StateRepository(config.state_url) as repo:
        app = make_app(
            config.server_config(stores),
            repo,
            session_timeout=http.session_timeout,
            max_request_size=http.max_request_size,
            public_url=http.public_url,
        )
        server = HttpServer(
            app,
            host=args.host if args.host is not None else http.host,
            port=args.port if args.port is not None else http.port,
        )
        asyncio.run(_serve_until_stopped(server))
    return EXIT_OK


def _cmd_run(args: argparse.Namespace) -> int:
    from syncmld.config import ConfigError  # noqa: PLC0415
    from syncmld.daemon import run_daemon, setup_logging  # noqa: PLC0415

    setup_logging(logging.DEBUG if args.verbose else logging.INFO)
    try:
        config = _config(args.config, defaults_ok=True)
    except ConfigError as exc:
        print(f"syncmld: {exc}", file=sys.stderr)
        return EXIT_USAGE
    asyncio.run(run_daemon(config))
    return EXIT_OK


def _run_guarded(args: argparse.Namespace) -> int:
    """``sync`` and ``serve-http``: every failure is one line, never a traceback."""
    try:
        status: int = args.func(args)
    except SyncmlError as exc:
        print(f"syncmld: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_FAILURE
    except Exception as exc:
        print(f"syncmld: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return status


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``syncmld`` (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(
        prog="syncmld", description="SyncML daemon and tools for phones and the Linux desktop."
    )
    parser.add_argument("--version", action="version", version=f"syncmld {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "decode", help="print a SyncML/DevInf document (XML or WBXML) as indented XML"
    )
    p.add_argument("file", metavar="FILE", help="input file, or - for standard input")
    p.set_defaults(func=_cmd_decode)

    p = sub.add_parser("encode", help="convert a SyncML/DevInf document to WBXML or XML")
    form = p.add_mutually_exclusive_group(required=True)
    form.add_argument("--wbxml", action="store_true", help="write WBXML")
    form.add_argument("--xml", action="store_true", help="write XML")
    p.add_argument("file", metavar="FILE", help="input file, or - for standard input")
    p.add_argument("-o", "--output", metavar="OUT", help="output file (default: standard output)")
    p.add_argument(
        "--numeric-public-id",
        action="store_true",
        help="WBXML: name the DTD by its registered number instead of its string",
    )
    p.add_argument("--pretty", action="store_true", help="XML: indent elements")
    p.set_defaults(func=_cmd_encode)

    config_help = f"configuration file (default: {_DEFAULT_CONFIG})"
    p = sub.add_parser(
        "sync",
        help="sync once with a SyncML server of the configuration file",
        description="Run one SyncML session with SERVER ([servers.SERVER] in the configuration) "
        "and print one line per datastore: mode, items added/replaced/deleted locally and "
        "remotely, conflicts, status.  Exit status 0 when every datastore synced, 1 otherwise, "
        "2 for configuration errors.",
    )
    p.add_argument("server", metavar="SERVER", help="the [servers.SERVER] table to use")
    p.add_argument("--config", metavar="FILE", help=config_help)
    p.add_argument(
        "--mode",
        choices=[m.value for m in SyncMode],
        help="sync mode for every datastore (default: each pair's configured mode)",
    )
    p.add_argument(
        "--store",
        metavar="NAME",
        action="append",
        help="sync only this local store (repeatable; default: every pair of the server)",
    )
    p.set_defaults(func=_cmd_sync, guarded=True)

    p = sub.add_parser(
        "serve-http",
        help="serve the configured stores to SyncML clients over HTTP",
        description="Run the SyncML server role over HTTP in the foreground until Ctrl-C.",
    )
    p.add_argument("--config", metavar="FILE", help=config_help)
    p.add_argument("--host", help="address to listen on (default: [http] host)")
    p.add_argument(
        "--port", type=int, help="port to listen on, 0 for any free one (default: [http] port)"
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log every session step")
    p.set_defaults(func=_cmd_serve_http, guarded=True)

    p = sub.add_parser(
        "run",
        help="run the daemon: listeners, D-Bus API, automatic sync on connect",
        description="Run syncmld as a service until SIGTERM or SIGINT: the configured "
        "listeners (HTTP, OBEX over TCP, Bluetooth), the D-Bus API on the session bus "
        "(org.syncmld.Syncmld1) and automatic sync when a configured phone connects.  "
        "Without a session bus or BlueZ it says so and serves the rest.  Exit status 0 "
        "after a clean stop, 1 when it cannot start, 2 for configuration errors.",
    )
    p.add_argument("--config", metavar="FILE", help=config_help)
    p.add_argument("-v", "--verbose", action="store_true", help="log every session step")
    p.set_defaults(func=_cmd_run, guarded=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "guarded", False):
        return _run_guarded(args)
    try:
        status: int = args.func(args)
    except ProtocolError as exc:
        where = f" at byte {exc.offset}" if exc.offset is not None else ""
        print(f"syncmld: {args.file}: {exc.message}{where}", file=sys.stderr)
        return EXIT_FAILURE
    except SyncmlError as exc:
        print(f"syncmld: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except BrokenPipeError:
        return EXIT_FAILURE
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
