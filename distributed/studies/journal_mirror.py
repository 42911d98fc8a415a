"""A search's Optuna journal mirrored to the study's storage as an append-only log of objects.

Under ``<data root>/optuna-journal/``::

    000000000123.chunk              the bytes one mirrored write appended (sequence number 123)
    000000000064-000000000127.seg   chunks 64..127 joined (a segment)
    000000000000-000000000511.seg   chunks 0..511 joined: a snapshot (a segment from chunk 0)

Every object is created with the storage's exclusive create (:meth:`ConditionalStore.create`:
``If-None-Match: *`` on S3, a hard link locally) and is never replaced or deleted.  A chunk is the
commit: a writer creates chunk ``n`` only while its lease is held and only after its own chunk
``n - 1`` was created (or it read the log through ``n - 1``), so the chunks form one linear history.
A stale writer's create of a number another writer has used fails; the stale writer then stops
(:class:`~omasgan.trainables.storage.leases.LeaseLost`) and its lease is marked lost.  Segments are
copies of chunks their writer committed, so a reader may use any of them.

Reading lists the folder and covers the chunk numbers 0..last greedily with the object that starts
at the next number and reaches furthest, then reads those objects in parallel threads.

What a writer uploads: each chunk holds only the new bytes; a segment joins every ``SEGMENT_CHUNKS``
chunks written since the last segment or snapshot; a snapshot is written when the bytes since the
last snapshot exceed both the last snapshot's size and ``SNAPSHOT_MIN_BYTES``.  Each snapshot is
more than twice the one before, so all snapshots together stay under twice the journal, and every
journal byte is uploaded fewer than four times (chunk, segment, snapshots): bytes per trial stay flat.
A resume reads one snapshot (at least half the journal), at most (bytes after it) / (the bytes of
``SEGMENT_CHUNKS`` chunks) segments, and fewer than ``SEGMENT_CHUNKS`` chunks.

A study written before this layout has its whole journal in ``<data root>/optuna-journal.log``
(rewritten after every append); it is read when the folder holds no object, and the first writer
copies it into chunk 0.
"""

from __future__ import annotations

import re
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MIRROR_FOLDER = "optuna-journal"
SEGMENT_CHUNKS = 64
SNAPSHOT_MIN_BYTES = 64 * 1024
READ_THREADS = 16

_NAME = re.compile(r"^(\d{12})(?:\.chunk|-(\d{12})\.seg)$")


@dataclass(frozen=True)
class MirrorObject:
    """One object of the log: the chunks ``first..last`` it holds, its size and its path."""

    first: int
    last: int
    size: int
    path: str

    @property
    def is_chunk(self) -> bool:
        return self.path.endswith(".chunk")


def chunk_name(number: int) -> str:
    return f"{number:012d}.chunk"


def segment_name(first: int, last: int) -> str:
    return f"{first:012d}-{last:012d}.seg"


def parse_name(name: str) -> tuple[int, int] | None:
    """``(first, last)`` chunk numbers of an object's file name, or None for any other file."""
    match = _NAME.match(name)
    if match is None:
        return None
    first = int(match.group(1))
    return first, int(match.group(2)) if match.group(2) is not None else first


def cover(objects: list[MirrorObject]) -> list[MirrorObject]:
    """The objects to read, in order, to rebuild chunks ``0..last``: from each position the object
    starting there that reaches furthest.  A missing chunk (a deleted object) raises RuntimeError."""
    if not objects:
        return []
    furthest: dict[int, MirrorObject] = {}
    for obj in objects:
        if obj.last >= obj.first and (obj.first not in furthest or obj.last > furthest[obj.first].last):
            furthest[obj.first] = obj
    last = max(obj.last for obj in objects)
    plan, position = [], 0
    while position <= last:
        obj = furthest.get(position)
        if obj is None:
            raise RuntimeError(f"the journal log has no object starting at chunk {position} (of 0..{last}); "
                               "an object was deleted from its folder")
        plan.append(obj)
        position = obj.last + 1
    return plan


@dataclass
class MirrorState:
    """Where the log stands, as the writer that read or wrote it last knows it."""

    next_chunk: int = 0
    size: int = 0
    """Bytes of the journal the log holds (the length of the local journal's mirrored prefix)."""
    snapshot_size: int = 0
    run_first: int = 0
    """The first chunk not yet in a segment or snapshot."""
    run_offset: int = 0
    """The journal offset where chunk ``run_first`` begins."""

    @classmethod
    def of(cls, plan: list[MirrorObject]) -> "MirrorState":
        state = cls(next_chunk=plan[-1].last + 1 if plan else 0, size=sum(obj.size for obj in plan))
        if plan:
            state.snapshot_size = plan[0].size  # the object from chunk 0: a snapshot, or the first chunk
        offset = 0
        for obj in plan:
            offset += obj.size
            if not obj.is_chunk:
                state.run_first, state.run_offset = obj.last + 1, offset
        return state


@dataclass
class Tally:
    """A count of objects and of the bytes they hold."""

    objects: int = 0
    bytes: int = 0

    def add(self, size: int, objects: int = 1) -> None:
        """Count ``objects`` more objects holding ``size`` bytes together."""
        self.objects += objects
        self.bytes += size


class MirrorTraffic:
    """What a writer uploaded and a reader read, for measurements: ``chunks`` (one object per push, with
    only the new bytes: the commits), ``segments`` (copies of ``SEGMENT_CHUNKS`` chunks each),
    ``snapshots`` (copies of every chunk from chunk 0) and ``reads`` (the objects
    :meth:`JournalMirror.read` read: a cover, or the old whole-file copy)."""

    def __init__(self) -> None:
        self.chunks, self.segments, self.snapshots, self.reads = Tally(), Tally(), Tally(), Tally()

    @property
    def objects(self) -> int:
        """Objects uploaded."""
        return self.chunks.objects + self.segments.objects + self.snapshots.objects

    @property
    def bytes(self) -> int:
        """Bytes uploaded."""
        return self.chunks.bytes + self.segments.bytes + self.snapshots.bytes


class JournalMirror:
    """The log of one study (see the module docstring) on a :class:`ConditionalStore`.

    ``fs`` and ``folder`` are the pyarrow filesystem and path of ``<data root>/optuna-journal``;
    ``legacy`` the path of the old whole-file copy.  ``lease`` (a Lease, or None for no fence) is
    checked before every object is created."""

    def __init__(self, store: Any, fs: Any, folder: str, legacy: str | None = None, lease: Any = None) -> None:
        self.store, self.fs, self.folder, self.legacy, self.lease = store, fs, folder, legacy, lease
        self.state: MirrorState | None = None
        self.traffic = MirrorTraffic()
        self._lock = threading.Lock()
        self._warned = False

    def where(self, obj: str) -> str:
        return f"{self.folder}/{obj}"

    # ---- reading ------------------------------------------------------------------------------
    def objects(self) -> list[MirrorObject]:
        """Every object of the log (one listing of the folder)."""
        import pyarrow.fs as pafs

        found = []
        for info in self.fs.get_file_info(pafs.FileSelector(self.folder, allow_not_found=True)):
            numbers = parse_name(info.base_name) if info.type == pafs.FileType.File else None
            if numbers is not None:
                found.append(MirrorObject(numbers[0], numbers[1], int(info.size or 0), info.path))
        return found

    def _read_object(self, obj: MirrorObject) -> bytes:
        current = self.store.read(obj.path)
        if current is None:
            raise RuntimeError(f"journal object {obj.path} was listed but cannot be read")
        return current.data

    def read(self) -> tuple[bytes | None, bool]:
        """``(journal, legacy)``: the journal the log holds (None when there is none) and whether it
        came from the old whole-file copy; the writer's state is set to the log's end."""
        with self._lock:
            plan = cover(self.objects())
            self.state = MirrorState.of(plan)
            if not plan:
                if self.legacy is None:
                    return None, False
                current = self.store.read(self.legacy)
                if current is not None:
                    self.traffic.reads.add(len(current.data))
                return (current.data if current is not None else None), current is not None
            with ThreadPoolExecutor(max_workers=min(READ_THREADS, len(plan))) as pool:
                parts = list(pool.map(self._read_object, plan))
            if [len(part) for part in parts] != [obj.size for obj in plan]:
                raise RuntimeError(f"journal objects under {self.folder} changed size while read; read them again")
            self.traffic.reads.add(sum(map(len, parts)), objects=len(parts))
            return b"".join(parts), False

    # ---- writing ------------------------------------------------------------------------------
    def _fence(self) -> None:
        if self.lease is not None:
            self.lease.check()

    def push(self, journal: Path) -> int:
        """Upload the complete lines of ``journal`` past what the log holds as the next chunk (and a
        segment or snapshot when due, see the module docstring); return the chunk's bytes (0: nothing
        new).  Raises LeaseLost when the lease is not held, or when another writer has created the
        chunk's number (the lease is then marked lost).  Any other failure of the chunk's upload is
        warned about once and left for the next push, which carries the same bytes."""
        with self._lock:
            if self.state is None:
                self.state = MirrorState.of(cover(self.objects()))
            state = self.state
            with open(journal, "rb") as handle:
                handle.seek(state.size)
                pending = handle.read()
            pending = pending[: pending.rfind(b"\n") + 1]  # whole lines only
            if not pending:
                return 0
            self._fence()
            try:
                written = self._create_chunk(state, pending)
            except Exception as exc:  # noqa: BLE001 - throttling, a dropped connection: the next push retries
                from omasgan.trainables.storage.leases import LeaseLost

                if isinstance(exc, LeaseLost):
                    raise
                if not self._warned:
                    self._warned = True
                    warnings.warn(f"could not upload the journal's new records to {self.folder} "
                                  f"({type(exc).__name__}: {exc}); the next write uploads them", stacklevel=2)
                return 0
            self._maybe_merge(state, journal)
            return written

    def _create_chunk(self, state: MirrorState, pending: bytes) -> int:
        from omasgan.trainables.storage.leases import LeaseLost

        done = 0
        while done < len(pending):
            path = self.where(chunk_name(state.next_chunk))
            if self.store.create(path, pending[done:]) is None:
                existing = self.store.read(path)
                if existing is None or not existing.data or not pending[done:].startswith(existing.data):
                    reason = f"another driver wrote journal chunk {state.next_chunk} ({path})"
                    if self.lease is not None:
                        self.lease.mark_lost(reason)
                        self.lease.check()  # raises LeaseLost in the lease's own words
                    raise LeaseLost(reason)
                body = existing.data  # this writer's own earlier create, whose reply was lost
            else:
                body = pending[done:]
                self.traffic.chunks.add(len(body))
            state.next_chunk += 1
            state.size += len(body)
            done += len(body)
        return done

    def _maybe_merge(self, state: MirrorState, journal: Path) -> None:
        """Write the snapshot or segment that is due (optional copies: a failure is left for later)."""
        last = state.next_chunk - 1
        since_snapshot = state.size - state.snapshot_size
        snapshot = since_snapshot > max(state.snapshot_size, SNAPSHOT_MIN_BYTES)
        if not snapshot and last - state.run_first + 1 < SEGMENT_CHUNKS:
            return
        first, offset = (0, 0) if snapshot else (state.run_first, state.run_offset)
        if first < last:  # (a snapshot of chunk 0 alone is chunk 0)
            with open(journal, "rb") as handle:
                handle.seek(offset)
                body = handle.read(state.size - offset)
            try:
                self._fence()
                self.store.create(self.where(segment_name(first, last)), body)
            except Exception:  # noqa: BLE001 - LeaseLost or a storage error: the chunks hold every byte
                return
            (self.traffic.snapshots if snapshot else self.traffic.segments).add(len(body))
        if first == 0:  # a snapshot, or a segment from chunk 0, which is one
            state.snapshot_size = state.size
        state.run_first, state.run_offset = last + 1, state.size
