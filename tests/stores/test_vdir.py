"""The vdir store on a real temporary folder."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import pytest

from syncmld.engine.store import (
    ICAL_20,
    VCARD_30,
    ItemNotFound,
    ItemUnreadable,
    PreconditionFailed,
    ReadOnlyStore,
    StoreError,
)
from syncmld.stores.vdir import DEFAULT_COLORS, VdirStore, check_item, etag_of, uid_of


def vcard(uid: str | None, name: str = "Doe", extra: str = "") -> str:
    uid_line = f"UID:{uid}\r\n" if uid is not None else ""
    return (
        f"BEGIN:VCARD\r\nVERSION:3.0\r\n{uid_line}N:{name};John;;;\r\n"
        f"FN:John {name}\r\n{extra}END:VCARD\r\n"
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "contacts" / "default"


@pytest.fixture
def store(folder: Path) -> VdirStore:
    return VdirStore(folder, content_types=(VCARD_30,), suffix=".vcf")


def bump(path: Path, text: str) -> None:
    """Edit a file in place as a desktop program would, with a visibly newer mtime."""
    st = path.stat()
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_folder_is_created_with_displayname(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b"
    store = VdirStore(path, content_types=(VCARD_30,), suffix=".vcf", display_name="My contacts")
    assert path.is_dir()
    assert (path / "displayname").read_text(encoding="utf-8") == "My contacts\n"
    assert list(store.list()) == []
    # An existing folder is left as it is.
    (path / "displayname").write_text("Renamed\n", encoding="utf-8")
    VdirStore(path, content_types=(VCARD_30,), suffix=".vcf", display_name="Other")
    assert (path / "displayname").read_text(encoding="utf-8") == "Renamed\n"


def test_path_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(StoreError, match="not a folder"):
        VdirStore(tmp_path / "f", content_types=(VCARD_30,), suffix=".vcf")


def test_add_get_replace_delete(store: VdirStore, folder: Path) -> None:
    item_id, etag = store.add(vcard("abc-1"))
    assert item_id == "abc-1.vcf"
    assert (folder / item_id).read_bytes() == vcard("abc-1").encode()
    assert store.get(item_id) == (vcard("abc-1"), etag)
    assert list(store.list()) == [(item_id, etag)]

    new_etag = store.replace(item_id, vcard("abc-1", "Smith"), etag=etag)
    assert new_etag != etag
    assert store.get(item_id) == (vcard("abc-1", "Smith"), new_etag)
    assert list(store.list()) == [(item_id, new_etag)]

    store.delete(item_id, etag=new_etag)
    assert list(store.list()) == []
    assert not (folder / item_id).exists()
    with pytest.raises(ItemNotFound):
        store.get(item_id)
    with pytest.raises(ItemNotFound):
        store.replace(item_id, vcard("abc-1"), etag=None)
    with pytest.raises(ItemNotFound):
        store.delete(item_id, etag=None)


def test_bytes_on_disk_are_utf8_and_unchanged(store: VdirStore, folder: Path) -> None:
    text = vcard("u-1", "Müller-Łukasz 山田 🙂")
    item_id, _ = store.add(text)
    assert (folder / item_id).read_bytes() == text.encode("utf-8")
    assert store.get(item_id)[0] == text


def test_file_name_from_uid(store: VdirStore) -> None:
    for uid in ("simple", "with.dots_and-dashes+plus", "A1B2C3", "x@example.org"):
        item_id, _ = store.add(vcard(uid))
        assert item_id == uid + ".vcf"


def test_folded_uid_is_joined() -> None:
    assert uid_of("BEGIN:VCARD\r\nUID:abc\r\n def\r\nEND:VCARD\r\n") == "abcdef"
    assert uid_of("BEGIN:VCARD\nuid;VALUE=text:x-1\nEND:VCARD\n") == "x-1"
    assert uid_of("BEGIN:VCARD\r\nEND:VCARD\r\n") is None


@pytest.mark.parametrize(
    "uid",
    [
        "has space",
        "slash/inside",
        "../escape",
        ".hidden",
        "ümlaut",
        "colon:x",
        "x" * 201,
        None,
        "",
    ],
)
def test_unsafe_or_missing_uid_gets_a_uuid_name(store: VdirStore, uid: str | None) -> None:
    item_id, _ = store.add(vcard(uid))
    stem, suffix = item_id.rsplit(".", 1)
    assert suffix == "vcf"
    assert len(stem) == 36 and stem.count("-") == 4  # a UUID
    assert store.get(item_id)[0] == vcard(uid)
    assert [i for i, _ in store.list()] == [item_id]


def test_taken_name_gets_a_uuid_and_nothing_is_overwritten(store: VdirStore) -> None:
    first, _ = store.add(vcard("same", "First"))
    second, _ = store.add(vcard("same", "Second"))
    assert first == "same.vcf"
    assert second != first
    assert "First" in store.get(first)[0]
    assert "Second" in store.get(second)[0]


def test_name_is_kept_on_update(store: VdirStore, folder: Path) -> None:
    item_id, etag = store.add(vcard("original"))
    store.replace(item_id, vcard("a-different-uid", "Changed"), etag=etag)
    assert sorted(os.listdir(folder)) == ["displayname", "original.vcf"]
    assert "Changed" in store.get("original.vcf")[0]


def test_replace_keeps_the_file_mode(store: VdirStore, folder: Path) -> None:
    item_id, etag = store.add(vcard("m"))
    os.chmod(folder / item_id, 0o640)
    etag = store.get(item_id)[1]
    store.replace(item_id, vcard("m", "New"), etag=etag)
    assert (folder / item_id).stat().st_mode & 0o777 == 0o640


def test_ignored_files(store: VdirStore, folder: Path) -> None:
    item_id, etag = store.add(vcard("real"))
    for name in (
        "leftover.vcf.tmp",
        ".hidden.vcf",
        ".real.vcf.0123.tmp",
        "color",
        "README",
        "event.ics",
        "notes.txt",
    ):
        (folder / name).write_text(vcard("ignored"), encoding="utf-8")
    (folder / "sub.vcf").mkdir()
    (folder / "dangling.vcf").symlink_to(folder / "nowhere")
    assert list(store.list()) == [(item_id, etag)]
    for name in ("leftover.vcf.tmp", ".hidden.vcf", "color", "event.ics", "sub.vcf", "../x.vcf"):
        with pytest.raises(ItemNotFound):
            store.get(name)
    with pytest.raises(ItemNotFound):
        store.delete("color", etag=None)
    assert (folder / "color").exists()


def test_items_written_by_others_are_listed(store: VdirStore, folder: Path) -> None:
    (folder / "khard-made.vcf").write_text(vcard("k"), encoding="utf-8")
    (folder / "upper.VCF").write_text(vcard("u"), encoding="utf-8")
    assert sorted(i for i, _ in store.list()) == ["khard-made.vcf", "upper.VCF"]
    assert store.get("khard-made.vcf")[0] == vcard("k")


def test_latin1_file_is_read(store: VdirStore, folder: Path) -> None:
    (folder / "old.vcf").write_bytes(vcard("old", "Müller").encode("iso-8859-1"))
    assert "Müller" in store.get("old.vcf")[0]
    (folder / "bom.vcf").write_bytes(b"\xef\xbb\xbf" + vcard("bom").encode())
    assert store.get("bom.vcf")[0] == vcard("bom")


def test_etag_is_mtime_and_inode(store: VdirStore, folder: Path) -> None:
    item_id, etag = store.add(vcard("e"))
    st = (folder / item_id).stat()
    assert etag == f"{st.st_mtime_ns}:{st.st_ino}" == etag_of(st)


def test_etag_changes_on_edit(store: VdirStore, folder: Path) -> None:
    item_id, etag = store.add(vcard("e"))
    bump(folder / item_id, vcard("e", "Edited"))
    text, new_etag = store.get(item_id)
    assert new_etag != etag
    assert "Edited" in text
    assert dict(store.list())[item_id] == new_etag
    # Our own replace makes a new file: the etag changes even within one clock tick.
    etags = {new_etag}
    for n in range(5):
        new_etag = store.replace(item_id, vcard("e", f"Name{n}"), etag=new_etag)
        etags.add(new_etag)
    assert len(etags) == 6


def test_precondition_failed_when_edited_behind_our_back(store: VdirStore, folder: Path) -> None:
    item_id, etag = store.add(vcard("p"))
    bump(folder / item_id, vcard("p", "Khal"))
    with pytest.raises(PreconditionFailed):
        store.replace(item_id, vcard("p", "Ours"), etag=etag)
    with pytest.raises(PreconditionFailed):
        store.delete(item_id, etag=etag)
    assert "Khal" in store.get(item_id)[0]  # the desktop edit is kept
    # Without an etag (the engine forcing a write), it goes through.
    store.replace(item_id, vcard("p", "Ours"), etag=None)
    assert "Ours" in store.get(item_id)[0]


def test_file_replaced_by_another_program_fails_precondition(
    store: VdirStore, folder: Path
) -> None:
    """vdirsyncer and khal write a new file and rename it: a new inode."""
    item_id, etag = store.add(vcard("r"))
    other = folder / "other.tmp"
    other.write_text(vcard("r", "Renamed"), encoding="utf-8")
    st = (folder / item_id).stat()
    os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))  # even with the same mtime
    os.replace(other, folder / item_id)
    with pytest.raises(PreconditionFailed):
        store.replace(item_id, vcard("r", "Ours"), etag=etag)


def test_no_partial_file_is_ever_visible(store: VdirStore, folder: Path) -> None:
    small = vcard("big", "Small")
    large = vcard("big", "Large", extra="NOTE:" + "x" * 2_000_000 + "\r\n")
    item_id, etag = store.add(small)
    path = folder / item_id
    seen: set[int] = set()
    stop = threading.Event()
    bad: list[int] = []

    def reader() -> None:
        while not stop.is_set():
            data = path.read_bytes()
            seen.add(len(data))
            if data not in (small.encode(), large.encode()):
                bad.append(len(data))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for n in range(10):
            etag = store.replace(item_id, large if n % 2 == 0 else small, etag=etag)
    finally:
        stop.set()
        thread.join()
    assert bad == []
    assert seen <= {len(small.encode()), len(large.encode())}
    assert [n for n in os.listdir(folder) if n.endswith(".tmp")] == []


def test_failed_write_leaves_the_old_file_and_no_temp_file(
    store: VdirStore, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    item_id, etag = store.add(vcard("keep", "Old"))

    def disk_full(*args: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    # Publishing the temp file is the step that fails (rename and hard link).
    monkeypatch.setattr(os, "replace", disk_full)
    monkeypatch.setattr(os, "link", disk_full)
    with pytest.raises(StoreError, match="No space left on device"):
        store.replace(item_id, vcard("keep", "New"), etag=etag)
    with pytest.raises(StoreError):
        store.add(vcard("fresh"))
    monkeypatch.undo()
    assert store.get(item_id) == (vcard("keep", "Old"), etag)
    assert sorted(os.listdir(folder)) == ["displayname", "keep.vcf"]


def test_read_only(folder: Path) -> None:
    writable = VdirStore(folder, content_types=(VCARD_30,), suffix=".vcf")
    item_id, etag = writable.add(vcard("ro"))
    store = VdirStore(folder, content_types=(VCARD_30,), suffix=".vcf", read_only=True)
    with pytest.raises(ReadOnlyStore):
        store.add(vcard("x"))
    with pytest.raises(ReadOnlyStore):
        store.replace(item_id, vcard("x"), etag=etag)
    with pytest.raises(ReadOnlyStore):
        store.delete(item_id, etag=etag)
    assert store.get(item_id)[0] == vcard("ro")


def test_calendar_kind(tmp_path: Path) -> None:
    store = VdirStore.of_kind(tmp_path / "cal", "calendar")
    assert store.content_types == (ICAL_20,)
    event = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
        "UID:event-1@example.org\r\nDTSTAMP:20240101T000000Z\r\n"
        "DTSTART:20240102T100000Z\r\nSUMMARY:Meeting\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    item_id, _ = store.add(event)
    # "@" is among the safe characters (the usual form of calendar UIDs).
    assert item_id == "event-1@example.org.ics"
    assert store.get(item_id)[0] == event
    assert (tmp_path / "cal" / "color").read_text() == DEFAULT_COLORS["calendar"] + "\n"
    with pytest.raises(ValueError):
        VdirStore.of_kind(tmp_path / "n", "memos")


def calendar(*components: str) -> str:
    body = "".join(
        f"BEGIN:{c}\r\nUID:{c.lower()}-1\r\nDTSTAMP:20240101T000000Z\r\n"
        f"SUMMARY:{c} item\r\nEND:{c}\r\n"
        for c in components
    )
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n{body}END:VCALENDAR\r\n"


def test_kinds_share_an_ics_folder(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    events = VdirStore.of_kind(folder, "events", color="#112233")
    tasks = VdirStore.of_kind(folder, "tasks")
    notes = VdirStore.of_kind(folder, "notes")
    every = VdirStore.of_kind(folder, "calendar")
    assert (folder / "color").read_text() == "#112233\n"
    e, _ = events.add(calendar("VEVENT"))
    t, _ = tasks.add(calendar("VTODO"))
    n, _ = notes.add(calendar("VJOURNAL"))
    assert [i for i, _ in events.list()] == [e]
    assert [i for i, _ in tasks.list()] == [t]
    assert [i for i, _ in notes.list()] == [n]
    assert sorted(i for i, _ in every.list()) == sorted([e, t])


@pytest.mark.parametrize(
    "text",
    [
        "",
        "garbage\n",
        "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:x\r\n",  # END missing
        "BEGIN:VCARD\r\nFN:a\r\nEND:VCARD\r\nBEGIN:VCARD\r\nFN:b\r\nEND:VCARD\r\n",
        "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n",  # wrong object for .vcf
        "BEGIN:VCARD\r\nthis is no property\r\nEND:VCARD\r\n",
        "BEGIN:VCARD\r\nEND:VCALENDAR\r\n",
    ],
)
def test_invalid_file_is_listed_but_unreadable_with_a_warning(
    store: VdirStore, folder: Path, text: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A damaged file stays listed (a missing one would count as deleted); get refuses it."""
    good, etag = store.add(vcard("good"))
    broken = folder / "broken.vcf"
    broken.write_text(text, encoding="utf-8")
    broken_etag = etag_of(broken.stat())
    with caplog.at_level("WARNING", logger="syncmld.stores.vdir"):
        assert sorted(store.list()) == sorted([(good, etag), ("broken.vcf", broken_etag)])
        assert sorted(store.list()) == sorted([(good, etag), ("broken.vcf", broken_etag)])
        with pytest.raises(ItemUnreadable, match=r"default/broken\.vcf: "):
            store.get("broken.vcf")
        assert [i for i, _, _ in store.get_many([good])] == [good]
    warnings = [r for r in caplog.records if "broken.vcf" in r.getMessage()]
    assert len(warnings) == 1  # once per version of the file
    assert check_item(text, ".vcf") is not None
    # Repaired, it is an item again.
    bump(broken, vcard("repaired"))
    assert sorted(i for i, _ in store.list()) == ["broken.vcf", good]
    assert "repaired" in store.get("broken.vcf")[0]


def test_check_item_accepts_real_items() -> None:
    assert check_item(vcard("x", extra="item1.EMAIL;TYPE=INTERNET:a@b.c\r\n"), ".vcf") is None
    assert check_item(calendar("VEVENT", "VTIMEZONE"), ".ics") is None
    assert check_item(calendar("VTODO"), ".ics", frozenset({"VEVENT"})) is not None
    assert check_item("anything at all", ".txt") is None


def test_bad_color(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        VdirStore.of_kind(tmp_path / "c", "events", color="blue")


def test_bad_suffix(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        VdirStore(tmp_path, content_types=(VCARD_30,), suffix="vcf")


# ------------------------------------------------------------------ flush


class FsyncSpy:
    """Records what ``os.fsync`` is called on (by path), then syncs for real."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.synced: list[str] = []
        self.fail: set[str] = set()
        real = os.fsync

        def spy(fd: int) -> None:
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target in self.fail:
                raise OSError(errno.EIO, os.strerror(errno.EIO))
            self.synced.append(target)
            real(fd)

        monkeypatch.setattr(os, "fsync", spy)


def test_writes_are_complete_at_once_and_durable_at_flush(
    store: VdirStore, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept, etag = store.add(vcard("kept", "Kept"))
    gone, gone_etag = store.add(vcard("gone"))
    store.flush()
    spy = FsyncSpy(monkeypatch)
    a, _ = store.add(vcard("a", "Alpha"))
    b, _ = store.add(vcard("b", "Beta"))
    etag = store.replace(kept, vcard("kept", "First"), etag=etag)
    store.replace(kept, vcard("kept", "Second"), etag=etag)
    store.delete(gone, etag=gone_etag)
    # Nothing synced yet, but every file is whole and the temp files are gone.
    assert spy.synced == []
    assert (folder / a).read_bytes().decode() == vcard("a", "Alpha")
    assert (folder / b).read_bytes().decode() == vcard("b", "Beta")
    assert (folder / kept).read_bytes().decode() == vcard("kept", "Second")
    assert sorted(os.listdir(folder)) == sorted(["displayname", a, b, kept])
    store.flush()
    # Each touched file once (the twice-replaced one too), then the folder once.
    files = [str(folder / n) for n in (a, b, kept)]
    assert sorted(spy.synced[:-1]) == sorted(files)
    assert spy.synced[-1] == str(folder)
    # Flushed means forgotten: a second flush has nothing to do.
    store.flush()
    assert len(spy.synced) == 4


def test_delete_alone_syncs_only_the_folder(
    store: VdirStore, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    item_id, etag = store.add(vcard("x"))
    store.flush()
    spy = FsyncSpy(monkeypatch)
    store.delete(item_id, etag=etag)
    store.flush()
    assert spy.synced == [str(folder)]


def test_flush_skips_files_removed_since_they_were_written(
    store: VdirStore, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    item_id, _ = store.add(vcard("x"))
    other, _ = store.add(vcard("y"))
    (folder / item_id).unlink()  # khard deleted it before the session ended
    spy = FsyncSpy(monkeypatch)
    store.flush()
    assert spy.synced == [str(folder / other), str(folder)]


def test_failed_flush_raises_and_keeps_the_files_pending(
    store: VdirStore, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, _ = store.add(vcard("a"))
    b, _ = store.add(vcard("b"))
    spy = FsyncSpy(monkeypatch)
    spy.fail.add(str(folder / a))
    with pytest.raises(StoreError, match=r"cannot sync .*a\.vcf: Input/output error"):
        store.flush()
    spy.fail.clear()
    spy.synced.clear()
    store.flush()
    # The failed file and the folder are synced on the next flush.
    assert str(folder / a) in spy.synced
    assert spy.synced[-1] == str(folder)
    spy.synced.clear()
    store.flush()
    assert spy.synced == []
    assert store.get(a)[0] == vcard("a") and store.get(b)[0] == vcard("b")
