"""The prediction log's local spool: where answered rows wait, durable, while the database is slow or away.

A spool is a directory of append-only segments `seg-<seq>.jsonl`, each a run of frames, one frame per batch
of rows: `<crc32 of the JSON, 8 hex> <JSON list of rows>\\n`, fsync'd before the batch counts as stored. A
torn or corrupt tail (a crash mid-write) ends a segment's readable frames; nothing behind it was ever
acknowledged. Segments are replayed oldest first and deleted only once their rows are committed.
The directory is owned by one process at a time (an flock on `.lock`); a later process takes over what a
dead one left. Bounded in bytes and rows: past the bound `append` raises `SpoolFull`."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

SEGMENT_BYTES = 4 << 20  # a segment is sealed past this size: replay commits one segment per transaction
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode


class SpoolFull(Exception):
    """The spool has no room for a batch: the rows cannot be made durable, so they must not be answered."""


class SpoolUnwritable(SpoolFull):
    """The spool's directory refused a write (no space left on its disk, read-only, quota): no room either,
    until the operator makes some."""


def unwritable_reason(exc: OSError, where: Path) -> str:
    """`spool unwritable: No space left on device (ENOSPC) in /dir`: the disk's refusal, in one line."""
    import errno

    name = errno.errorcode.get(exc.errno or 0, "error")
    return f"spool unwritable: {exc.strerror or exc} ({name}) in {where}"


def frame_of(rows: list[dict]) -> bytes:
    """One batch as a spool frame: crc32 of the JSON text, a space, the JSON list, a newline."""
    payload = _ENCODE(rows).encode()
    return b"%08x %s\n" % (zlib.crc32(payload), payload)


def frames_in(data: bytes) -> tuple[list[list[dict]], int]:
    """The batches of a segment's bytes, in order, and how many bytes at the end were unreadable (a torn or
    corrupt frame and everything after it)."""
    batches: list[list[dict]] = []
    at = 0
    while at < len(data):
        end = data.find(b"\n", at)
        if end < 0:
            break
        line = data[at:end]
        try:
            crc, payload = int(line[:8], 16), line[9:]
            if line[8:9] != b" " or zlib.crc32(payload) != crc:
                break
            batches.append(json.loads(payload))
        except ValueError:
            break
        at = end + 1
    return batches, len(data) - at


def segment_seq(path: Path) -> int:
    """The sequence number in a segment's name (`seg-000042.jsonl` -> 42)."""
    return int(path.stem.split("-", 1)[1])


def spool_key(url: str) -> str:
    """A directory name for the rows bound for the database `url` (its password left out): a spool is
    never replayed into another database."""
    import sqlalchemy as sa

    text = sa.engine.make_url(url).render_as_string(hide_password=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Segment:
    path: Path
    rows: int
    nbytes: int


class Spool:
    """The spool of one service: `root`/<slot>/ (the first slot no live process holds), bounded by
    `max_bytes` and `max_rows`. Thread-safe. `active` is True while rows wait in it: then new rows queue
    behind them (the database receives rows in the order they were answered)."""

    def __init__(self, root: Path, max_bytes: int, max_rows: int = 0, segment_bytes: int = SEGMENT_BYTES):
        self.max_bytes, self.max_rows, self.segment_bytes = max_bytes, max_rows, segment_bytes
        root.mkdir(parents=True, exist_ok=True)
        self.dir, self._lock_file = _claim_slot(root)
        self._lock = threading.Lock()
        self._sealed: list[Segment] = []
        self.torn_bytes = 0
        adopted = _adopt_free_slots(root, self.dir)
        for path in sorted(self.dir.glob("seg-*.jsonl"), key=segment_seq):
            data = path.read_bytes()
            batches, torn = frames_in(data)
            self.torn_bytes += torn
            self._sealed.append(Segment(path, sum(map(len, batches)), len(data)))
        self.adopted = adopted
        self._seq = max((segment_seq(s.path) for s in self._sealed), default=0)
        self._open: tuple[Segment, object] | None = None  # (segment so far, file) being appended to
        self.active = bool(self._sealed)

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self._segments())

    @property
    def nbytes(self) -> int:
        return sum(s.nbytes for s in self._segments())

    def _segments(self) -> list[Segment]:
        return self._sealed + ([self._open[0]] if self._open else [])

    def room_for(self, rows: int, nbytes: int) -> str | None:
        """Why a batch of `rows` rows and `nbytes` bytes does not fit, or None."""
        if self.nbytes + nbytes > self.max_bytes:
            return f"spool full: {self.nbytes} bytes + {nbytes} over the bound of {self.max_bytes}"
        if self.max_rows and self.rows + rows > self.max_rows:
            return f"spool full: {self.rows} rows + {rows} over the bound of {self.max_rows}"
        return None

    def append(self, rows: list[dict], only_if_active: bool = False) -> bool:
        """Store a batch durably (written and fsync'd when this returns True). With `only_if_active`, do
        nothing and return False while the spool is empty. Raises SpoolFull past the bound."""
        frame = frame_of(rows)
        with self._lock:
            if only_if_active and not self.active:
                return False
            reason = self.room_for(len(rows), len(frame))
            if reason:
                raise SpoolFull(reason)
            try:
                if self._open is None or self._open[0].nbytes >= self.segment_bytes:
                    self._seal()
                    self._seq += 1
                    path = self.dir / f"seg-{self._seq:06d}.jsonl"
                    self._open = (Segment(path, 0, 0), open(path, "ab", buffering=0))  # noqa: SIM115
                    _fsync_dir(self.dir)  # the new name survives a crash too
                seg, file = self._open
                try:
                    _write_all(file, frame)
                    os.fsync(file.fileno())
                except OSError:
                    # A torn frame would end the segment's readable frames there: the frames written after
                    # it, acknowledged, would never be replayed. Cut it off (shrinking needs no space), and
                    # should that fail too, end the segment: the next frame starts a new one.
                    try:
                        file.truncate(seg.nbytes)
                    except OSError:
                        self._seal()
                    raise
            except OSError as exc:
                raise SpoolUnwritable(unwritable_reason(exc, self.dir)) from exc
            self._open = (Segment(seg.path, seg.rows + len(rows), seg.nbytes + len(frame)), file)
            self.active = True
            return True

    def writable(self) -> str | None:
        """Why the spool's directory refuses a small write now (the reason), or None when it takes one."""
        probe = self.dir / ".probe"
        try:
            with open(probe, "wb", buffering=0) as file:
                _write_all(file, b"\0" * 4096)
                os.fsync(file.fileno())
        except OSError as exc:
            return unwritable_reason(exc, self.dir)
        finally:
            probe.unlink(missing_ok=True)
        return None

    def _seal(self) -> None:
        if self._open is not None:
            seg, file = self._open
            file.close()
            self._sealed.append(seg)
            self._open = None

    def oldest(self) -> Segment | None:
        """The oldest segment to replay (the one being appended to is sealed when it is all there is), or
        None when the spool is empty, which ends `active`: new rows go to the database again."""
        with self._lock:
            if not self._sealed:
                self._seal()
            if self._sealed:
                return self._sealed[0]
            self.active = False
            return None

    def remove(self, segment: Segment) -> None:
        """Delete a replayed segment (its rows are committed)."""
        with self._lock:
            self._sealed.remove(segment)
            segment.path.unlink(missing_ok=True)
            _fsync_dir(self.dir)

    def set_aside(self, segment: Segment, reason: str) -> Path:
        """Move a segment the database refuses for good (not an outage: bad data) to `rejected/`, with the
        reason beside it; returns its new path."""
        with self._lock:
            self._sealed.remove(segment)
            rejected = self.dir.parent / "rejected"
            rejected.mkdir(exist_ok=True)
            dest = rejected / f"{self.dir.name}-{segment.path.name}"
            os.replace(segment.path, dest)
            dest.with_suffix(".reason").write_text(reason + "\n")
            return dest

    def close(self) -> None:
        """Close the open segment and give up the directory (what is left is replayed by the next owner)."""
        with self._lock:
            self._seal()
            self._lock_file.close()


def read_segment(segment: Segment) -> list[dict]:
    """The rows of a segment, in the order they were stored."""
    batches, _ = frames_in(segment.path.read_bytes())
    return [row for batch in batches for row in batch]


def _claim_slot(root: Path) -> tuple[Path, object]:
    """The first slot directory (0, 1, ...) under `root` no live process holds, locked for this one."""
    for n in range(1000):
        slot = root / str(n)
        slot.mkdir(exist_ok=True)
        lock = open(slot / ".lock", "a")  # noqa: SIM115 - held for the spool's life
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        return slot, lock
    raise RuntimeError(f"{root}: 1000 spool slots held by live processes")


def _adopt_free_slots(root: Path, own: Path) -> int:
    """Move the segments of other slots no live process holds (left by a dead service) behind this slot's
    own, renumbered in their order; returns how many were moved. A rename is atomic: a crash here leaves
    each segment in one place or the other."""
    seq = max((segment_seq(p) for p in own.glob("seg-*.jsonl")), default=0)
    moved = 0
    for slot in sorted(
        (p for p in root.iterdir() if p.is_dir() and p.name.isdigit() and p != own), key=lambda p: int(p.name)
    ):
        segments = sorted(slot.glob("seg-*.jsonl"), key=segment_seq)
        if not segments:
            continue
        with open(slot / ".lock", "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live service's
            for path in sorted(slot.glob("seg-*.jsonl"), key=segment_seq):
                seq += 1
                os.replace(path, own / f"seg-{seq:06d}.jsonl")
                moved += 1
            _fsync_dir(own)
            _fsync_dir(slot)
    return moved


def _write_all(file, data: bytes) -> None:
    """Write all of `data` to an unbuffered file (a disk filling up writes part of it, then refuses)."""
    view = memoryview(data)
    while view:
        view = view[file.write(view) :]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
