"""The run itself: typed rows from raw blocks, the two passes, the ledger the rules keep,
and what a run yields (accounts, rejects, events, summary).

Above `io` and `kernels`; below `state`, `distributed` and the job (accounts_job/job.py),
none of which it imports: a nightly state joins a run through the `Night` hooks of
engine/run.py.
"""
