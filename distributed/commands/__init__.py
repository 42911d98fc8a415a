"""The study subcommands of ``omasgan`` that stand above the rooms they use (registered by
:mod:`omasgan.distributed.cli`).

- :mod:`.studies`: ``omasgan search | sensitivity | seeds | confirm | results``, and registering the
  rest (``compare``, ``report``, ``compact``, ``baseline``)
- :mod:`.doctor`: ``omasgan doctor``, a preflight of a cluster
- :mod:`.cache`: ``omasgan cache ls|prune``
- :mod:`.compact`: ``omasgan compact``, a study's small result files merged into parts
"""
