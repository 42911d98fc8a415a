"""What a study leaves on disk, and reading and writing it.

- :mod:`.study_folder`: a study's folder, its ``study.json`` (StudySpec) and ``confirmation.json``
- :mod:`.result_schema`: the result store's layout, its one file-name rule and its versioned schema
- :mod:`.result_store`: the Parquet result store's reader and writer (results, scores, samples)
- :mod:`.manifest`: compaction's merge protocol: which parts are live, and the manifest commit
- :mod:`.compaction`: many small Parquet files merged into a few parts per partition, atomically
- :mod:`.compaction_scope`: what a compaction merges (settled files) and drops (rows of unknown trials)
- :mod:`.compaction_lock`: one compaction at a time per store (a fenced lease)
- :mod:`.trial_record`: a study trial's durable record of the rounds it finished
- :mod:`.result_query`: ``--where`` filters and the ``omasgan results`` summary, pushed down to the scan
"""
