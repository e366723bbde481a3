"""Bytes in, tables out: the input's sources, blocks and header; the Arrow schemas; the
writers of CSV and Parquet; the Polars views of the results.

Above the kernels, below the engine: a module here may import `accounts_job.kernels`
and the base modules (codes, errors, faults), never the engine, the state or anything
above them.
"""
