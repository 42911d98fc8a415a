"""The studies on Ray Tune (and Optuna): preparing, running and resuming them, unit by unit.

- :mod:`.preparation`: a study's run options and paths, and every check of its input before Ray starts
- :mod:`.control`: a study's control state on its storage: the driver lease, the journal's copy
- :mod:`.runner`: one study as one Tune experiment (Ray start or join, the trial plan, clean-up)
- :mod:`.capacity`: how many units of a trial a cluster can hold at once; refusing what never fits
- :mod:`.trainable`: a study trial's Tune trainable: its units as Ray tasks, stage by stage
- :mod:`.units`: one (held-out class, seed) unit of a trial, trained up to one stage
- :mod:`.baseline`: baseline units (kNN, Isolation Forest, autoencoder) and ``omasgan baseline``
- :mod:`.journal_search`: OptunaSearch whose journal records which trials are finished
- :mod:`.progress`: a study's live progress on the console
- :mod:`.confirmation`: a search's winners rerun on fresh seeds and compared with the base config
"""
