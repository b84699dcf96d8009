"""WBXML token tables and public identifiers for SyncML, MetInf and DevInf.

The token values are those of the SyncML 1.0-1.2 representation and DevInf
specifications (the same tables libwbxml, the SyncML Reference Toolkit and
the Symbian SyncML framework use, and that decode the Sony Ericsson and
Motorola captures in ``tests/data``).  Element names are also used by the XML
codec to tell which vocabulary an element belongs to when the sender's
namespace declarations cannot be trusted.
"""

from __future__ import annotations

from typing import Final

from syncmld.protocol.tree import DEVINF, METINF, SYNCML

#: SyncML code page 0 (1.2 adds 0x35-0x3C).
SYNCML_PAGE0: Final[dict[int, str]] = {
    0x05: "Add", 0x06: "Alert", 0x07: "Archive", 0x08: "Atomic", 0x09: "Chal",
    0x0A: "Cmd", 0x0B: "CmdID", 0x0C: "CmdRef", 0x0D: "Copy", 0x0E: "Cred",
    0x0F: "Data", 0x10: "Delete", 0x11: "Exec", 0x12: "Final", 0x13: "Get",
    0x14: "Item", 0x15: "Lang", 0x16: "LocName", 0x17: "LocURI", 0x18: "Map",
    0x19: "MapItem", 0x1A: "Meta", 0x1B: "MsgID", 0x1C: "MsgRef", 0x1D: "NoResp",
    0x1E: "NoResults", 0x1F: "Put", 0x20: "Replace", 0x21: "RespURI", 0x22: "Results",
    0x23: "Search", 0x24: "Sequence", 0x25: "SessionID", 0x26: "SftDel", 0x27: "Source",
    0x28: "SourceRef", 0x29: "Status", 0x2A: "Sync", 0x2B: "SyncBody", 0x2C: "SyncHdr",
    0x2D: "SyncML", 0x2E: "Target", 0x2F: "TargetRef", 0x31: "VerDTD", 0x32: "VerProto",
    0x33: "NumberOfChanges", 0x34: "MoreData", 0x35: "Field", 0x36: "Filter",
    0x37: "Record", 0x38: "FilterType", 0x39: "SourceParent", 0x3A: "TargetParent",
    0x3B: "Move", 0x3C: "Correlator",
}  # fmt: skip

#: MetInf, code page 1 of a SyncML document.
METINF_PAGE1: Final[dict[int, str]] = {
    0x05: "Anchor", 0x06: "EMI", 0x07: "Format", 0x08: "FreeID", 0x09: "FreeMem",
    0x0A: "Last", 0x0B: "Mark", 0x0C: "MaxMsgSize", 0x0D: "Mem", 0x0E: "MetInf",
    0x0F: "Next", 0x10: "NextNonce", 0x11: "SharedMem", 0x12: "Size", 0x13: "Type",
    0x14: "Version", 0x15: "MaxObjSize", 0x16: "FieldLevel",
}  # fmt: skip

#: DevInf, code page 0 of a DevInf document.  0x1C is ``Size`` up to 1.1 and
#: ``MaxSize`` in 1.2 (same token); decoders map it by the document's version.
DEVINF_PAGE0: Final[dict[int, str]] = {
    0x05: "CTCap", 0x06: "CTType", 0x07: "DataStore", 0x08: "DataType", 0x09: "DevID",
    0x0A: "DevInf", 0x0B: "DevTyp", 0x0C: "DisplayName", 0x0D: "DSMem", 0x0E: "Ext",
    0x0F: "FwV", 0x10: "HwV", 0x11: "Man", 0x12: "MaxGUIDSize", 0x13: "MaxID",
    0x14: "MaxMem", 0x15: "Mod", 0x16: "OEM", 0x17: "ParamName", 0x18: "PropName",
    0x19: "Rx", 0x1A: "Rx-Pref", 0x1B: "SharedMem", 0x1C: "Size", 0x1D: "SourceRef",
    0x1E: "SwV", 0x1F: "SyncCap", 0x20: "SyncType", 0x21: "Tx", 0x22: "Tx-Pref",
    0x23: "ValEnum", 0x24: "VerCT", 0x25: "VerDTD", 0x26: "XNam", 0x27: "XVal",
    0x28: "UTC", 0x29: "SupportNumberOfChanges", 0x2A: "SupportLargeObjs",
    0x2B: "Property", 0x2C: "PropParam", 0x2D: "MaxOccur", 0x2E: "NoTruncate",
    0x30: "Filter-Rx", 0x31: "FilterCap", 0x32: "FilterKeyword", 0x33: "FieldLevel",
    0x34: "SupportHierarchicalSync",
}  # fmt: skip

SYNCML_TAGS: Final = frozenset(SYNCML_PAGE0.values())
METINF_TAGS: Final = frozenset(METINF_PAGE1.values())
DEVINF_TAGS: Final = frozenset(DEVINF_PAGE0.values()) | {"MaxSize"}

#: (vocabulary, code page) -> {token: name} for a SyncML document.
SYNCML_DOC_PAGES: Final[dict[int, tuple[str, dict[int, str]]]] = {
    0: (SYNCML, SYNCML_PAGE0),
    1: (METINF, METINF_PAGE1),
}
#: The same for a DevInf document.
DEVINF_DOC_PAGES: Final[dict[int, tuple[str, dict[int, str]]]] = {
    0: (DEVINF, DEVINF_PAGE0),
}


def reverse(page: dict[int, str]) -> dict[str, int]:
    """name -> token for one code page."""
    return {name: tok for tok, name in page.items()}


#: name -> (page, token) for encoding a SyncML document.
SYNCML_ENCODE: Final[dict[tuple[str, str], tuple[int, int]]] = {
    **{(SYNCML, n): (0, t) for t, n in SYNCML_PAGE0.items()},
    **{(METINF, n): (1, t) for t, n in METINF_PAGE1.items()},
}
#: name -> (page, token) for encoding a DevInf document.
DEVINF_ENCODE: Final[dict[tuple[str, str], tuple[int, int]]] = {
    **{(DEVINF, n): (0, t) for t, n in DEVINF_PAGE0.items()},
    (DEVINF, "MaxSize"): (0, 0x1C),
}

# --- Public identifiers -----------------------------------------------------
#: Registered numeric public ids -> (document kind, version).
PUBLIC_IDS: Final[dict[int, tuple[str, str]]] = {
    0x0FD1: (SYNCML, "1.0"),
    0x0FD3: (SYNCML, "1.1"),
    0x1201: (SYNCML, "1.2"),
    0x0FD2: (DEVINF, "1.0"),
    0x0FD4: (DEVINF, "1.1"),
    0x1203: (DEVINF, "1.2"),
    0x1202: (METINF, "1.2"),
}
#: (document kind, version) -> registered numeric public id.
PUBLIC_ID_NUMBERS: Final[dict[tuple[str, str], int]] = {v: k for k, v in PUBLIC_IDS.items()}


def fpi(kind: str, version: str) -> str:
    """The formal public identifier string, e.g. ``-//SYNCML//DTD SyncML 1.1//EN``."""
    name = {SYNCML: "SyncML", DEVINF: "DevInf", METINF: "MetInf"}[kind]
    return f"-//SYNCML//DTD {name} {version}//EN"


def parse_fpi(text: str) -> tuple[str, str] | None:
    """(kind, version) for a SyncML-family FPI string, else ``None``.

    Case and surrounding blanks are ignored; the registry's ``MetaInf``
    spelling is accepted.
    """
    t = text.strip().strip("\x00").upper()
    prefix = "-//SYNCML//DTD "
    if not t.startswith(prefix) or not t.endswith("//EN"):
        return None
    parts = t[len(prefix) : -len("//EN")].split()
    if len(parts) != 2:
        return None
    kind = {"SYNCML": SYNCML, "DEVINF": DEVINF, "METINF": METINF, "METAINF": METINF}.get(parts[0])
    if kind is None or parts[1] not in ("1.0", "1.1", "1.2"):
        return None
    return kind, parts[1]
