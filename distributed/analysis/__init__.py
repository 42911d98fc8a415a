"""How a study's rows become numbers (pandas and scipy over the stored rows; no Ray).

- :mod:`.objective`: what a search maximises: the aggregates over a trial's units, the metric's key
- :mod:`.ranking`: the one ranking of a search's trials (CLI table, report and confirmation)
- :mod:`.statistics`: paired comparisons, seed summaries, the noise floor
- :mod:`.tables`: the plain-text tables a study prints (search, sensitivity, seeds, results)
"""
