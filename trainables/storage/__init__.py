"""The storage primitives of a study's files, on a local disk or an object store (installed as
``omasgan.trainables.storage``).  The lowest room of the card folders: it imports nothing from the rest
of ``omasgan.trainables`` nor from ``omasgan.distributed``, which both build on it.

- :mod:`.filesystems`: a root (a path or a URI) as a pyarrow file system; folders; atomic replacement
  of one file (through :mod:`omasgan.atomic_write`, the one temporary-then-move write)
- :mod:`.conditional`: create, read, replace and delete of one file with preconditions the storage
  checks (local files, S3, GCS; best effort elsewhere)
- :mod:`.leases`: heartbeated, fenced leases on a conditional store, and the one rule for when
  another party's lease is stale
"""
