"""What a study leaves on disk, and reading and writing it.

- :mod:`.study_folder`: a study's folder, its ``study.json`` (StudySpec) and ``confirmation.json``
- :mod:`.result_store`: the versioned, hive-partitioned Parquet result store (results, scores, samples)
- :mod:`.trial_record`: a study trial's durable record of the rounds it finished
- :mod:`.result_query`: ``--where`` filters and the ``omasgan results`` summary, pushed down to the scan
- :mod:`.compaction`: many small Parquet files merged into a few parts, atomically; ``omasgan compact``
"""
