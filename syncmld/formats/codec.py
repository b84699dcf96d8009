"""The format-converting item codec: how the engine moves PIM items between a peer and a store.

Theory of operation
-------------------
The engine talks to item content only through the ``ItemCodec`` protocol
(:mod:`syncmld.engine.items`).  :class:`FormatCodec` implements it for one
datastore kind (``contacts``, ``calendar`` = events and tasks, ``events``,
``tasks``, ``notes``).  A codec built from the configuration knows nothing
about the peer; once the peer's DevInf is known the engine calls
:meth:`FormatCodec.for_peer`, which returns a codec bound to that device: its
datastore (Rx-Pref/Rx, CTCap) and its :class:`~syncmld.formats.quirks.DeviceProfile`.

``to_local``
    whatever the peer sent (vCard 2.1/3.0, vCalendar 1.0/iCalendar 2.0, SIF,
    vNote, text/plain; the content is sniffed, labels lie) becomes the
    store's form: UTF-8 vCard 3.0 or iCalendar 2.0, never 2.1.  An item
    without a UID gets a stable one derived from its content, marked
    ``syncmld-`` so that :meth:`~FormatCodec.uid` and
    :meth:`~FormatCodec.digest` can ignore it (the phone never saw it).
``to_remote``
    picks the format from the peer's Rx-Pref, then Rx (then the format the
    peer itself sent, then vCard 2.1 / vCalendar 1.0 / text/plain for a
    phone without DevInf), drops the properties its CTCap does not list,
    cuts values to the CTCap/quirk sizes, moves pre-1980 yearly events for
    Nokia, and converts with the profile's charset, folding, time mode.
    What could not be represented is kept in :attr:`FormatCodec.warnings`.
``digest``
    :func:`~syncmld.formats.normalize.content_hash` without the UID: volatile
    properties, folding, property order and parameter case do not count, and
    neither does the UID, so a peer that drops it (SyncEvolution's vCard
    profile never sends one) still holds "the same content" in a slow sync.
    The UID is compared on its own (:meth:`~FormatCodec.uid`).

Cost
    Conversion runs for every item of every sync, so the common case is kept
    cheap: an item that already is in desktop form (one UTF-8 vCard 3.0 with
    CRLF lines, no quoted-printable, no ``CHARSET``, N and FN present) is
    stored as sent, only a missing UID added, and sent as stored to a vCard
    3.0 peer whose CTCap holds all its properties.  ``to_local`` parses an
    item once and remembers the digest of what it returns (a bounded map
    keyed by the exact text, :func:`clear_caches` empties it), so the
    ``digest`` the engine asks for next costs a dictionary lookup.
``merge(local, remote)``
    a three-way merge per property, whose base is the *projection* of the
    local item: what the device would hold after receiving it
    (``to_local(to_remote(local))``).  A property the device sends back as
    projected was not changed there and the desktop's full version stays;
    a property the device cannot hold (CTCap) stays; a changed one is
    taken from the device; a property missing from the device's version is
    deleted only when the device's CTCap says it could store it (without
    CTCap the desktop keeps fields the device never sent).
"""

from __future__ import annotations

import re
from typing import Any

from syncmld.engine.store import ContentType as EngineType
from syncmld.formats import ContentType
from syncmld.formats.errors import FormatError
from syncmld.formats.normalize import canonical_line, components_hash, content_hash
from syncmld.formats.notes import (
    ical20_to_plain,
    ical20_to_vnote,
    plain_to_ical20,
    vnote_to_ical20,
)
from syncmld.formats.quirks import DeviceProfile, profile_for
from syncmld.formats.sif import (
    SIF_TYPES,
    ical20_to_sif,
    sif_to_ical20,
    sif_to_vcard30,
    vcard30_to_sif,
)
from syncmld.formats.vcalendar import ical20_to_vcal10, vcal10_to_ical20
from syncmld.formats.vcard import (
    Component,
    ContentLine,
    Conversion,
    escape30,
    parse_components,
    parse_simple,
    serialize_component,
    unescape30,
    vcard21_to_30,
    vcard30_to_21,
)
from syncmld.protocol.devinf import CTCap, DataStore, DevInf

__all__ = ["DIGEST_IGNORED", "KINDS", "SYNTHETIC_UID_PREFIX", "FormatCodec", "clear_caches"]

SYNTHETIC_UID_PREFIX = "syncmld-"
"""UIDs the codec made up for items that came without one."""

DIGEST_IGNORED = frozenset({"UID"})
"""Properties :meth:`FormatCodec.digest` leaves out besides the volatile ones of
:data:`~syncmld.formats.normalize.IGNORED_PROPERTIES`: SyncEvolution's vCard
profile sends contacts without their UID, and phones without DevInf UID
support drop it too, so the UID must not decide whether two items hold the same
content (the engine compares UIDs separately and never pairs different ones)."""

KINDS: dict[str, frozenset[str]] = {
    "contacts": frozenset({"VCARD"}),
    "calendar": frozenset({"VEVENT", "VTODO"}),
    "events": frozenset({"VEVENT"}),
    "tasks": frozenset({"VTODO"}),
    "notes": frozenset({"VJOURNAL"}),
}
"""Datastore kind -> the components its items hold."""

SIFC, SIFE, SIFT, SIFN = (EngineType(t, "1.0") for t in SIF_TYPES)
_VCARD21 = EngineType("text/x-vcard", "2.1")
_VCARD30 = EngineType("text/vcard", "3.0")
_VCAL10 = EngineType("text/x-vcalendar", "1.0")
_ICAL20 = EngineType("text/calendar", "2.0")
_PLAIN = EngineType("text/plain", "1.0")
_VNOTE = EngineType("text/x-vnote", "1.1")

# What each kind can produce for a peer, and its default for a phone without DevInf.
_PRODUCES: dict[str, tuple[EngineType, ...]] = {
    "contacts": (_VCARD21, _VCARD30, SIFC),
    "calendar": (_VCAL10, _ICAL20, SIFE, SIFT),
    "events": (_VCAL10, _ICAL20, SIFE),
    "tasks": (_VCAL10, _ICAL20, SIFT),
    "notes": (_PLAIN, _VNOTE, _ICAL20, SIFN),
}
# Always the local item's: identity and writer stamps.
_KEEP_LOCAL = frozenset({"UID", "VERSION", "PRODID", "REV", "DTSTAMP", "LAST-MODIFIED",
                         "CREATED", "SEQUENCE"})
# Properties that may occur more than once (merged as lists).
_MULTI = frozenset({"TEL", "EMAIL", "ADR", "URL", "LABEL", "IMPP", "ATTENDEE", "EXDATE",
                    "RDATE", "COMMENT", "CONTACT", "RELATED-TO", "RESOURCES", "VALARM",
                    "CATEGORIES"})
# iCalendar 2.0 name -> the vCalendar 1.0 CTCap names that mean the device stores it.
_VCAL_NAMES: dict[str, tuple[str, ...]] = {
    "VALARM": ("AALARM", "DALARM", "VALARM", "PALARM", "MALARM"),
    "CREATED": ("DCREATED", "CREATED"),
    "STATUS": ("STATUS",),
}
_STRUCTURE = frozenset({"BEGIN", "END", "VERSION", "UID"})
_TEXTUAL = frozenset({"FN", "N", "NOTE", "TITLE", "ORG", "ADR", "EMAIL", "TEL", "NICKNAME",
                      "SUMMARY", "DESCRIPTION", "LOCATION", "ROLE", "URL"})


# Programming slips inside the converters, reported as a bad item rather than a crash.
_SLIPS = (KeyError, IndexError, TypeError, AttributeError, OverflowError)


def _etype(mime: str, version: str | None) -> EngineType:
    return EngineType(mime.strip().lower(), (version or "").strip())


class FormatCodec:
    """An ``ItemCodec`` that converts between a peer's formats and a desktop store's.

    Args:
        kind: the datastore kind (a key of :data:`KINDS`).
        device_tz: the device's IANA zone, for floating phone times.
        devinf, remote_uri: the bound peer (use :meth:`for_peer`).
        profile: quirk settings (default: from ``devinf``'s Man/Mod/SwV).
    """

    def __init__(
        self,
        kind: str,
        *,
        device_tz: str | None = None,
        devinf: DevInf | None = None,
        remote_uri: str | None = None,
        profile: DeviceProfile | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown datastore kind {kind!r}")
        self.kind = kind
        self.device_tz = device_tz
        self.devinf = devinf
        self.remote_uri = remote_uri
        if profile is None:
            profile = (profile_for(devinf.man, devinf.mod, devinf.sw_v) if devinf is not None
                       else DeviceProfile())
        self.profile = profile
        self.peer_store: DataStore | None = (
            devinf.datastore(remote_uri) if devinf is not None and remote_uri else None)
        #: What could not be represented on the peer, one line per item and problem.
        self.warnings: list[str] = []
        self._cut: list[str] = []
        #: The last content type the peer sent (answered in kind when it has no DevInf).
        self.seen_type: EngineType | None = None

    @property
    def content_types(self) -> tuple[EngineType, ...]:
        """What this datastore takes from peers: the desktop format first, then the others."""
        desktop = _VCARD30 if self.kind == "contacts" else _ICAL20
        return (desktop, *(t for t in _PRODUCES[self.kind] if t != desktop))

    @property
    def max_guid_size(self) -> int | None:
        """The longest item id the bound device stores, when a quirk knows it (P900: 4)."""
        return self.profile.max_guid_size

    @property
    def max_msg_size(self) -> int | None:
        """A message size cap for the bound device when its DevInf gives none."""
        return self.profile.max_msg_size

    # -- binding -------------------------------------------------------------------

    def for_peer(self, devinf: DevInf | None, remote_uri: str) -> FormatCodec:
        """A codec for this datastore bound to a peer's DevInf (``None``: unknown peer)."""
        return FormatCodec(self.kind, device_tz=self.device_tz, devinf=devinf,
                           remote_uri=remote_uri)

    # -- peer -> store -------------------------------------------------------------

    def to_local(self, data: str, content_type: str | None) -> str:
        """Convert an item the peer sent (labelled ``content_type``) to the desktop form.

        Raises:
            FormatError: the item cannot be read or is not of this datastore's kind.
        """
        try:
            return self._to_local(data, content_type)
        except _SLIPS as exc:  # pragma: no cover - a converter bug must not end the session
            raise FormatError(f"unreadable item: {type(exc).__name__}: {exc}") from exc

    def _to_local(self, data: str, content_type: str | None) -> str:
        label = (content_type or "").strip().lower()
        if label in SIF_TYPES:
            self.seen_type = _etype(label, "1.0")
            if label == SIFC.mime:
                out = sif_to_vcard30(data)
            else:
                out = sif_to_ical20(data, label, device_tz=self.device_tz)
            return self._finish(out)
        if self.kind == "contacts" and label in _VCARD_LABELS:
            fast = self._desktop_to_local(data)
            if fast is not None:
                return fast
        hint = None
        if label:
            try:
                hint = ContentType.from_meta(label)
            except FormatError:
                hint = None
        actual = ContentType.sniff(data, hint)
        self.seen_type = _etype(actual.mime, actual.ver_ct)
        if actual.kind == "contact":
            out = vcard21_to_30(data)
        elif actual in (ContentType.VCALENDAR10, ContentType.ICALENDAR20):
            out = vcal10_to_ical20(data, device_tz=self.device_tz)
        elif actual is ContentType.VNOTE11:
            out = vnote_to_ical20(data)
        else:
            if self.kind != "notes":
                raise FormatError(f"a {self.kind} datastore cannot store plain text")
            out = plain_to_ical20(data)
        return self._finish(out)

    def _desktop_to_local(self, data: str) -> str | None:
        """The fast path of :meth:`_to_local`: one vCard already in desktop form is
        stored as sent, a missing UID added (``None``: not desktop form)."""
        text = _desktop_vcard(data, validate=False)
        if text is None:
            return None
        card = parse_simple(text)
        if card is None or card.name != "VCARD":
            return None
        self.seen_type = _SNIFFED_VCARD30
        digest = components_hash((card,), ignore=DIGEST_IGNORED)
        if card.get("UID") is None:
            text = _with_uid(text, SYNTHETIC_UID_PREFIX + digest[:24])
        _remember(text, digest)
        return text

    def _finish(self, text: str) -> str:
        """Check the item's kind and give it a UID when it has none."""
        simple = parse_simple(text) if text.count("BEGIN:") == 1 else None
        roots = [simple] if simple is not None else parse_components(text)
        wanted = KINDS[self.kind]
        items = [c for r in roots for c in ([r] if r.name == "VCARD" else r.components)
                 if c.name in ("VCARD", "VEVENT", "VTODO", "VJOURNAL")]
        if not items:
            raise FormatError("the item holds nothing to store")
        wrong = sorted({c.name for c in items} - wanted)
        if wrong:
            hint = (" (this device keeps tasks in its calendar: sync it with a store of kind "
                    "calendar)" if self.profile.calendar_holds_tasks and "VTODO" in wrong
                    else "")
            raise FormatError(f"a {self.kind} datastore cannot store {', '.join(wrong)}{hint}")
        digest = components_hash(roots, ignore=DIGEST_IGNORED)
        if all(c.get("UID") is not None for c in items):
            _remember(text, digest)
            return text
        full = digest if _UID_RE.search(text) is None else components_hash(roots)
        uid = SYNTHETIC_UID_PREFIX + full[:24]
        if simple is not None:  # one component, serialized already: no need to again
            out = _with_uid(text, uid)
            _remember(out, digest)
            return out
        for comp in items:
            if comp.get("UID") is None:
                at = 1 if comp.properties and comp.properties[0].name == "VERSION" else 0
                comp.properties.insert(at, ContentLine("UID", uid))
        out = "".join(serialize_component(r, style="3.0") for r in roots)
        _remember(out, digest)
        return out

    # -- store -> peer -------------------------------------------------------------

    def _accepted(self, accepted: tuple[EngineType, ...]) -> list[EngineType]:
        """The peer's formats, preferred first: DevInf Rx-Pref/Rx, else what it sent."""
        peer: list[EngineType] = []
        if self.peer_store is not None:
            peer = [_etype(r.ct_type, r.ver_ct) for r in self.peer_store.rx_types]
        peer += [_etype(a.mime, a.version) for a in accepted]
        if self.seen_type is not None:
            peer.append(self.seen_type)
        return peer

    def choose(self, accepted: tuple[EngineType, ...], component: str | None = None
               ) -> EngineType:
        """The format to send an item (holding ``component``) to the peer in."""
        produces = _PRODUCES[self.kind]
        for want in self._accepted(accepted):
            for can in produces:
                if can.mime != want.mime:
                    continue
                if want.version and can.version != want.version and can.mime not in SIF_TYPES:
                    continue
                if can in (SIFE, SIFT) and component is not None:
                    return SIFT if component == "VTODO" else SIFE
                return can
        return produces[0]

    def to_remote(self, data: str, accepted: tuple[EngineType, ...]) -> tuple[str, EngineType]:
        """Convert a store item for the peer; returns the text and its content type.

        Raises:
            FormatError: the stored item cannot be read.
        """
        try:
            return self._to_remote(data, accepted)
        except _SLIPS as exc:  # pragma: no cover - a converter bug must not end the session
            raise FormatError(f"unconvertible item: {type(exc).__name__}: {exc}") from exc

    def _to_remote(self, data: str, accepted: tuple[EngineType, ...]
                   ) -> tuple[str, EngineType]:
        component = _main_component(data)
        target = self.choose(accepted, component)
        self._cut = []
        prepared = self._restrict(data, target)
        conv = self._convert_out(prepared, target)
        uid = _uid_of(data) or "?"
        self.warnings += [f"item {uid}: {cut} for the device" for cut in self._cut]
        if conv.lossy_properties:
            self.warnings.append(
                f"item {uid}: {', '.join(conv.lossy_properties)} not fully representable "
                f"as {target}")
        return conv.text, target

    def _convert_out(self, text: str, target: EngineType) -> Conversion:
        p = self.profile
        if target == _VCARD21:
            return vcard30_to_21(text, charset=p.charset, fold=p.fold,
                                 email_internet_type=p.email_internet_type)
        if target == _VCAL10:
            return ical20_to_vcal10(text, tz_mode=p.tz_mode, device_tz=self.device_tz,
                                    charset=p.charset, fold=p.fold, alarm_utc=p.alarm_utc,
                                    allday=p.allday)
        if target == _VNOTE:
            return ical20_to_vnote(text, charset=p.charset, fold=p.fold)
        if target == _PLAIN:
            return Conversion(ical20_to_plain(text))
        if target == SIFC:
            return Conversion(vcard30_to_sif(text))
        if target.mime in SIF_TYPES:
            return Conversion(ical20_to_sif(text, target.mime))
        if target == _VCARD30:
            desktop = _desktop_vcard(text)
            return Conversion(desktop if desktop is not None else vcard21_to_30(text))
        return Conversion(vcal10_to_ical20(text, device_tz=self.device_tz))

    def _ctcap(self, target: EngineType) -> CTCap | None:
        if self.devinf is None:
            return None
        cap = self.devinf.ctcap(target.mime, target.version or None,
                                source_ref=self.remote_uri)
        if cap is None or not cap.properties:
            return None
        return cap

    def _restrict(self, text: str, target: EngineType) -> str:
        """The desktop item cut down to what the device stores (CTCap, sizes, 1980)."""
        cap = self._ctcap(target) if target.mime not in SIF_TYPES else None
        limits = dict(self.profile.field_lengths)
        min_year = self.profile.min_year
        if cap is None and not limits and min_year is None:
            return text
        if not limits and cap is not None and self._fits(text, cap):
            return text
        roots = parse_components(text)
        changed = False
        for root in roots:
            for comp in root.walk():
                if comp.name == "VTIMEZONE" or comp.name in ("STANDARD", "DAYLIGHT"):
                    continue
                keep: list[ContentLine] = []
                for line in comp.properties:
                    new = self._restrict_line(line, cap, limits.get(line.name))
                    changed = changed or new is not line
                    if new is not None:
                        keep.append(new)
                comp.properties = keep
                if cap is not None and comp.name in ("VEVENT", "VTODO"):
                    alarms = [c for c in comp.components if c.name == "VALARM"]
                    if alarms and not any(cap.property(n) for n in _VCAL_NAMES["VALARM"]):
                        comp.components = [c for c in comp.components if c.name != "VALARM"]
                        changed = True
                if min_year is not None and comp.name in ("VEVENT", "VTODO"):
                    changed = _move_before(comp, min_year) or changed
        if not changed:
            return text
        return "".join(serialize_component(r, style="3.0") for r in roots)

    def _fits(self, text: str, cap: CTCap) -> bool:
        """True when a desktop-form vCard has only properties ``cap`` stores uncut."""
        if self.kind != "contacts" or _desktop_vcard(text) is None:
            return False
        for name in {n.upper() for n in _NAMES.findall(text)}:
            if name in _STRUCTURE or name == "END":
                continue
            prop = cap.property(name)
            if prop is None or (prop.max_size and not prop.no_truncate):
                return False
        return True

    def _restrict_line(self, line: ContentLine, cap: CTCap | None, limit: int | None
                       ) -> ContentLine | None:
        name = line.name
        size = limit
        if cap is not None and name not in _STRUCTURE:
            names = _VCAL_NAMES.get(name, (name,))
            prop = next((cap.property(n) for n in names if cap.property(n) is not None), None)
            if prop is None:
                return None
            if prop.max_size and not prop.no_truncate:
                size = min(size, prop.max_size) if size else prop.max_size
        if size is None or name not in _TEXTUAL or line.is_base64:
            return line
        text = unescape30(line.decoded())
        if len(text) <= size:
            return line
        if name in ("N", "ADR", "ORG"):
            return line  # structured: cutting would move parts between fields
        self._cut.append(f"{name} cut to {size} characters")
        return ContentLine(name, escape30(text[:size]),
                           tuple(p for p in line.params if p.name not in ("ENCODING", "CHARSET")),
                           line.group)

    # -- identity, hashing, merging ------------------------------------------------------

    def digest(self, data: str) -> str:
        """The normalized content hash without the UID (see :data:`DIGEST_IGNORED`)."""
        return _digest(data)

    def uid(self, data: str) -> str | None:
        """The item's UID, ``None`` when it has none or only one the codec made up."""
        uid = _uid_of(data)
        if uid is None or uid.startswith(SYNTHETIC_UID_PREFIX):
            return None
        return uid

    def project(self, local: str) -> str | None:
        """What the device holds after receiving ``local``, in desktop form (``None``: unknown)."""
        clone = FormatCodec(self.kind, device_tz=self.device_tz, devinf=self.devinf,
                            remote_uri=self.remote_uri, profile=self.profile)
        clone.seen_type = self.seen_type
        try:
            text, ctype = clone.to_remote(local, ())
            return clone.to_local(text, ctype.mime)
        except (FormatError, ValueError):
            return None

    def merge(self, local: str, remote: str) -> str:
        """Merge a device's update into the desktop item (see the module docstring).

        Returns ``local`` unchanged when the device changed nothing it stores.
        """
        try:
            l_roots = parse_components(local)
            r_roots = parse_components(remote)
        except FormatError:
            return remote
        base_text = self.project(local)
        b_roots = None
        if base_text is not None:
            try:
                b_roots = parse_components(base_text)
            except FormatError:
                b_roots = None
        has_cap = self._ctcap(self.choose((), _main_component(local))) is not None
        if not l_roots or not r_roots:
            return remote
        l_root, r_root = l_roots[0], r_roots[0]
        b_root = b_roots[0] if b_roots else None
        if l_root.name != r_root.name:
            return remote
        merged: Component | None
        if l_root.name == "VCARD":
            merged = _merge_component(l_root, r_root, b_root, has_cap)
        else:
            merged = _merge_calendar(l_root, r_root, b_root, has_cap)
        if merged is None:
            return local
        out = serialize_component(merged, style="3.0")
        return local if content_hash(out) == _content_hash(local) else out


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

_UID_RE = re.compile(r"^UID(?:;[^:\r\n]*)?:([^\r\n]*)", re.IGNORECASE | re.MULTILINE)


def _uid_of(data: str) -> str | None:
    m = _UID_RE.search(data)
    if m is None:
        return None
    if data.startswith(("\r\n ", "\r\n\t", "\n ", "\n\t"), m.end()):
        # A folded UID line: read it unfolded.
        m = _UID_RE.search(re.sub(r"\r?\n[ \t]", "", data))
        if m is None:  # pragma: no cover - unfolding cannot remove a UID line
            return None
    return m.group(1).strip() or None


def _with_uid(text: str, uid: str) -> str:
    """``text`` (one component, CRLF lines) with a UID line where :meth:`FormatCodec._finish`
    puts it: after a VERSION line that directly follows BEGIN, else right after BEGIN."""
    at = text.index("\r\n") + 2
    if text[at : at + 8].upper() == "VERSION:":
        at = text.index("\r\n", at) + 2
    return f"{text[:at]}UID:{uid}\r\n{text[at:]}"


# -- the digest cache ------------------------------------------------------------------

_CACHE_SIZE = 4096
_CACHE_MAX_TEXT = 64 * 1024  # a photo-sized item is hashed again rather than kept
_DIGESTS: dict[str, str] = {}
_HASHES: dict[str, str] = {}


def _remember(text: str, digest: str) -> None:
    """Keep ``digest`` (:func:`_digest` of ``text``) for the next look-up."""
    if len(text) > _CACHE_MAX_TEXT:
        return
    if len(_DIGESTS) >= _CACHE_SIZE:
        del _DIGESTS[next(iter(_DIGESTS))]  # the oldest entry
    _DIGESTS[text] = digest


def _digest(text: str) -> str:
    """``content_hash`` without the UID, looked up first (items just converted)."""
    found = _DIGESTS.get(text)
    if found is None:
        found = content_hash(text, ignore=DIGEST_IGNORED)
        _remember(text, found)
    return found


def _content_hash(text: str) -> str:
    """:func:`content_hash` with the same bounded memory as :func:`_digest`."""
    found = _HASHES.get(text)
    if found is None:
        found = content_hash(text)
        if len(text) <= _CACHE_MAX_TEXT:
            if len(_HASHES) >= _CACHE_SIZE:
                del _HASHES[next(iter(_HASHES))]
            _HASHES[text] = found
    return found


def clear_caches() -> None:
    """Forget all remembered digests (benchmarks; memory is bounded anyway)."""
    _DIGESTS.clear()
    _HASHES.clear()


# -- desktop form ------------------------------------------------------------------------

# Labels under which a peer may send a vCard (sniffing decides the version).
_VCARD_LABELS = frozenset({"", "text/vcard", "text/x-vcard", "text/directory"})
_SNIFFED_VCARD30 = _etype(ContentType.VCARD30.mime, ContentType.VCARD30.ver_ct)

# One vCard whose every line is a simple content line (no quoted parameter values)
# or a folded continuation, CRLF terminated.
_SIMPLE_VCARD = re.compile(
    r"BEGIN:VCARD\r\n"
    r"(?:(?:[A-Za-z0-9_-]+\.)?[A-Za-z0-9_-]+(?:;[^:\r\n\"]*)?:[^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*)*"
    r"END:VCARD\r\n",
    re.IGNORECASE,
)
_HAS_N = re.compile(r"\nN[;:]")
_HAS_FN = re.compile(r"\nFN[;:]")
_NAMES = re.compile(r"^(?:[A-Za-z0-9_-]+\.)?([A-Za-z0-9_-]+)[;:]", re.MULTILINE)


def _desktop_vcard(data: str, *, validate: bool = True) -> str | None:
    """``data`` (CRLF line ends ensured) when it already is one desktop-form vCard 3.0.

    Desktop form is what :func:`~syncmld.formats.vcard.vcard21_to_30` would keep
    in meaning: version 3.0, N and FN present, no transfer encoding but base64
    ``b``, no ``CHARSET``, no nested card.  ``None`` sends the item through the
    full conversion.  ``validate=False`` leaves out the check that every line is
    a well-formed content line (for callers that parse the text next with
    :func:`~syncmld.formats.vcard.parse_simple`, which checks it).
    """
    if "\r" not in data:
        data = data.replace("\n", "\r\n")
    upper = data.upper()
    if (
        not upper.startswith("BEGIN:VCARD\r\n")
        or not upper.endswith("\r\nEND:VCARD\r\n")
        or upper.count("VERSION:") != 1
        or "\r\nVERSION:3.0\r\n" not in upper
        or "QUOTED-PRINTABLE" in upper
        or "CHARSET" in upper
        or "BASE64" in upper
        or upper.count("BEGIN:") != 1
        or _HAS_N.search(upper) is None
        or _HAS_FN.search(upper) is None
        or (validate and _SIMPLE_VCARD.fullmatch(data) is None)
    ):
        return None
    return data


def _main_component(data: str) -> str | None:
    m = re.search(r"^BEGIN:(VEVENT|VTODO|VJOURNAL|VCARD)\s*$", data,
                  re.IGNORECASE | re.MULTILINE)
    return m.group(1).upper() if m else None


def _move_before(comp: Component, min_year: int) -> bool:
    """Move a yearly item starting before ``min_year`` to its first occurrence in it."""
    start = comp.get("DTSTART")
    if start is None:
        return False
    m = re.match(r"^(\d{4})(\d{4}.*)$", start.value.strip())
    if m is None or int(m.group(1)) >= min_year:
        return False
    rule = comp.get("RRULE")
    if rule is None or "FREQ=YEARLY" not in rule.value.upper():
        return False
    shift = min_year - int(m.group(1))
    for name in ("DTSTART", "DTEND", "DUE"):
        line = comp.get(name)
        if line is None:
            continue
        lm = re.match(r"^(\d{4})(.*)$", line.value.strip())
        if lm is None:
            continue
        new = ContentLine(name, f"{int(lm.group(1)) + shift:04d}{lm.group(2)}", line.params,
                          line.group)
        comp.properties[comp.properties.index(line)] = new
    return True


def _entries(comp: Component) -> dict[str, list[tuple[str, Any]]]:
    """Property name -> [(canonical form, line or sub-component)] in order."""
    out: dict[str, list[tuple[str, Any]]] = {}
    for line in comp.properties:
        canon = canonical_line(line, instant=True)
        if canon:
            out.setdefault(line.name, []).append((canon, line))
    for child in comp.components:
        canon = "\n".join(sorted(canonical_line(x, instant=True) for x in child.properties))
        out.setdefault(child.name, []).append((canon, child))
    return out


def _merge_component(local: Component, remote: Component, base: Component | None,
                     has_cap: bool) -> Component:
    l_e, r_e = _entries(local), _entries(remote)
    b_e = _entries(base) if base is not None else None
    names = list(l_e) + [n for n in r_e if n not in l_e]
    result: dict[str, list[Any]] = {}
    for name in names:
        lv, rv = l_e.get(name, []), r_e.get(name, [])
        if name in _KEEP_LOCAL:
            chosen = lv or rv
        elif b_e is None:
            chosen = rv or lv
        else:
            bv = b_e.get(name, [])
            if sorted(c for c, _ in rv) == sorted(c for c, _ in bv):
                chosen = lv  # the device did not change what it holds
            elif not rv:
                chosen = [] if has_cap else lv
            elif name in _MULTI:
                # Values the device changed, plus local ones it could not hold.
                chosen = rv + lv[len(bv):]
            else:
                chosen = rv
        result[name] = [x for _, x in chosen]
    props: list[ContentLine] = []
    comps: list[Component] = []
    for name in names:
        for x in result[name]:
            (props if isinstance(x, ContentLine) else comps).append(x)
    return Component(local.name, props, comps)


def _merge_calendar(local: Component, remote: Component, base: Component | None,
                    has_cap: bool) -> Component | None:
    def items(root: Component | None) -> list[Component]:
        if root is None:
            return []
        return [c for c in root.components if c.name in ("VEVENT", "VTODO", "VJOURNAL")]

    l_items, r_items, b_items = items(local), items(remote), items(base)
    if len(l_items) != 1 or len(r_items) != 1 or l_items[0].name != r_items[0].name:
        return remote if r_items else None
    b_item = b_items[0] if len(b_items) == 1 and b_items[0].name == l_items[0].name else None
    merged = _merge_component(l_items[0], r_items[0], b_item, has_cap)
    used = {p.param("TZID") for p in merged.properties if p.param("TZID")}
    zones: dict[str, Component] = {}
    for root in (local, remote):
        for comp in root.components:
            if comp.name == "VTIMEZONE":
                tzid = comp.get("TZID")
                key = tzid.value if tzid else ""
                if key in used and key not in zones:
                    zones[key] = comp
    return Component(local.name, list(local.properties), [*zones.values(), merged])
