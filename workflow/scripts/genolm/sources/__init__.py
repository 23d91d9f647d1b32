"""Builders that turn real public data (benchmark FASTA files, RegulonDB, RefSeq genomes) into task tables.

Each builder returns the task-table columns of :mod:`genolm.datasets` except `split`, plus an optional `group`
column; :mod:`genolm.sources.splits` assigns the splits.
"""
