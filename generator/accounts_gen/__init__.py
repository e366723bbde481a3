"""A fast, reproducible generator of transaction files for accounts-job."""

from .generate import CHUNK_ROWS, GenStats, SizeError, generate
from .options import DEFAULT_MIX, HOSTILE_MIX, PLAIN, Mix, Shape

__all__ = [
    "CHUNK_ROWS",
    "DEFAULT_MIX",
    "HOSTILE_MIX",
    "PLAIN",
    "GenStats",
    "Mix",
    "Shape",
    "SizeError",
    "generate",
]
