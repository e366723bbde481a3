"""What the tests share, and no test of its own.

- `model`: a reference model of docs/rules.md in plain Python, sharing no code with the job;
- `strategies`: Hypothesis strategies for whole transactions files, and their alphabets;
- `example`: the worked example of docs/rules.md §9, read from the document itself;
- `helpers`: writing an input, running the job on it, running the console script.

Test modules import these as `support.<module>` (tests/conftest.py puts tests/ on the path)
and never import one another.
"""
