"""The ``syncmld`` command line.

Subcommands:

``syncmld decode FILE|-``
    Print a SyncML message or DevInf document (XML or WBXML) as indented XML.
``syncmld encode --wbxml|--xml FILE|-``
    Convert a document to WBXML or XML (written to standard output or ``-o``).

Bad input is reported on one line naming the byte offset, with exit status 1;
usage errors exit with 2.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import sys
from collections.abc import Sequence

from syncmld import __version__
from syncmld.errors import SyncmlError
from syncmld.protocol.codec import (
    Document,
    Encoding,
    decode_document,
    encode_document,
    validate_document,
)
from syncmld.protocol.errors import ProtocolError
from syncmld.protocol.tree import Node

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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
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
