"""Every study subcommand of ``omasgan``: its arguments, its handler and what it prints, standing above
the rooms whose work it calls (registered by :mod:`omasgan.distributed.cli`).  No other room of
``omasgan.distributed`` builds an argparse parser.

- :mod:`.studies`: ``omasgan search | sensitivity | seeds | confirm | results``, and registering
  ``compare``, ``report``, ``compact`` and ``baseline``
- :mod:`.report`: ``omasgan report`` and ``omasgan compare``
- :mod:`.baseline`: ``omasgan baseline``, one classical baseline unit into a study folder
- :mod:`.compact`: ``omasgan compact``, a study's small result files merged into parts
- :mod:`.reproduce`: ``omasgan reproduce``, the paper's MNIST experiments and their claims table
- :mod:`.doctor`: ``omasgan doctor``, a preflight of a cluster (:mod:`.doctor_workers`: its checks of the
  autoscaler's worker types)
- :mod:`.cache`: ``omasgan cache ls|prune``
- :mod:`.subcommand`: what every subcommand's parser shares (its registration with its handler)
"""
