"""`notebooks/explore_accounts.ipynb`: stored clean, and runs top to bottom.

The notebook is executed in a kernel started from this very interpreter (`sys.executable`),
through a kernelspec written for the test: a `python3` kernelspec found on the machine (in
the user's Jupyter folder, say) may point at another Python without this project in it.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import accounts_job
import nbformat
from accounts_job import explore
from accounts_job.cli import app
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from support.example import WORKED_EXAMPLE, WORKED_EXAMPLE_REJECTS
from typer.testing import CliRunner

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "explore_accounts.ipynb"
CELL_TIMEOUT = 180  # seconds per cell; the slowest, the sample run, takes a few
STARTUP_TIMEOUT = 120


def read_notebook() -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOK, as_version=4)


def this_python_kernel(folder: Path) -> KernelManager:
    """A kernel manager whose only `python3` kernel runs ipykernel in sys.executable."""
    spec = folder / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (this environment)",
                "language": "python",
            }
        )
    )
    specs = KernelSpecManager(kernel_dirs=[str(folder / "kernels")], ensure_native_kernel=False)
    return KernelManager(kernel_name="python3", kernel_spec_manager=specs)


def execute(nb: nbformat.NotebookNode, workdir: Path) -> nbformat.NotebookNode:
    """Run every cell in order in `workdir`; a cell that raises fails the test."""
    client = NotebookClient(
        nb,
        km=this_python_kernel(workdir / ".jupyter"),
        timeout=CELL_TIMEOUT,
        startup_timeout=STARTUP_TIMEOUT,
        resources={"metadata": {"path": str(workdir)}},
    )
    return client.execute()


def parameters_cell(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    return next(cell for cell in nb.cells if cell.cell_type == "code")


def outputs(nb: nbformat.NotebookNode, kind: str) -> list[str]:
    """Every output of `kind` ("stream", or a mime type such as "image/png"), in order."""
    found = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if kind == "stream" and output.output_type == "stream":
                found.append(output.text)
            elif kind in output.get("data", {}):
                found.append(output.data[kind])
    return found


def test_stored_notebook_has_no_outputs_or_execution_counts() -> None:
    nb = read_notebook()
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code
    for cell in code:
        assert cell.outputs == [], f"cell {cell.id} is stored with outputs"
        assert cell.execution_count is None, f"cell {cell.id} is stored with an execution count"
    assert nb.metadata.kernelspec.name == "python3"


def test_first_code_cell_is_the_parameters_defaulting_to_a_sample() -> None:
    cell = parameters_cell(read_notebook())
    assert "parameters" in cell.metadata.get("tags", [])
    values: dict[str, object] = {}
    exec(cell.source, values)
    assert {name: values[name] for name in ("ACCOUNTS", "REJECTS", "SUMMARY", "EVENTS")} == {
        "ACCOUNTS": None,
        "REJECTS": None,
        "SUMMARY": None,
        "EVENTS": None,
    }


def test_notebook_runs_on_a_generated_sample(tmp_path: Path) -> None:
    nb = execute(read_notebook(), tmp_path)
    text = "".join(outputs(nb, "stream"))
    assert "summary   present" in text
    assert re.search(r"events    [\d,]+ rows", text)
    assert "every row accounted for: True" in text
    # Applied, rejects, balances, largest accounts, risk: each a PNG shown inline.
    assert len(outputs(nb, "image/png")) == 5
    # The sample run writes events, so the chargebacks that locked accounts are shown.
    assert not any("events" in markdown for markdown in outputs(nb, "text/markdown"))
    assert "charged_back" in "".join(outputs(nb, "text/html"))
    # Nothing was written into the working directory: the sample lives in a temp folder.
    assert sorted(p.name for p in tmp_path.iterdir()) == [".jupyter"]


# docs/rules.md §9, the worked example; the run locks client 1 with the chargeback on line 7.
EXAMPLE = WORKED_EXAMPLE


def test_notebook_runs_on_the_files_of_a_job_run(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text(EXAMPLE)
    out = tmp_path / "out"
    out.mkdir()
    done = CliRunner().invoke(
        app,
        [
            "run",
            str(tmp_path / "in.csv"),
            "--out",
            str(out / "accounts.csv"),
            "--rejects",
            str(out / "rejects.parquet"),
            "--summary",
            str(out / "summary.json"),
            "--events",
            str(out / "events.csv"),
            "--quiet",
        ],
    )
    assert done.exit_code == 0, done.output

    nb = read_notebook()
    parameters_cell(nb).source = "\n".join(
        [
            f"ACCOUNTS = {str(out / 'accounts.csv')!r}",
            f"REJECTS = {str(out / 'rejects.parquet')!r}",
            f"SUMMARY = {str(out / 'summary.json')!r}",
            f"EVENTS = {str(out / 'events.csv')!r}",
            "TOP_N = 10",
            "SAMPLES_PER_REASON = 3",
        ]
    )
    nb = execute(nb, tmp_path)

    text = "".join(outputs(nb, "stream"))
    assert f"rejects   {len(WORKED_EXAMPLE_REJECTS)} rows" in text
    assert "events    6 rows" in text
    assert "every row accounted for: True" in text
    # Client 1: available -10 + 6 = -4 after the dispute of its withdrawn deposit.
    assert "1 accounts have negative available; exposure -4.0000" in text
    assert "1 locked accounts" in text
    # With events, the chargeback that locked client 1 is shown, not the request for them.
    assert not any("events" in markdown for markdown in outputs(nb, "text/markdown"))
    tables = "".join(outputs(nb, "text/html"))
    assert "charged_back" in tables
    for line, _ in WORKED_EXAMPLE_REJECTS:  # the rejected lines of the example
        assert f"<td>{line}</td>" in tables
    assert len(outputs(nb, "image/png")) == 5

    # The notebook's figures match the package's on the same files.
    expected = explore.exposure(accounts_job.process(tmp_path / "in.csv").accounts)
    assert f"exposure {expected.amount:,}" in text
