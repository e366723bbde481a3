"""The documents say what the code does: every command and option of the command line is in
README.md, and docs/rules.md holds what the tests take from it.

The command line's commands and options are read from the Typer app itself (as
sqlite-utils checks its own), so a new option fails here until the README names it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer.main
from accounts_job.cli import app
from support.example import (
    RULES,
    WORKED_EXAMPLE,
    WORKED_EXAMPLE_CSV,
    WORKED_EXAMPLE_REJECTS,
    WORKED_EXAMPLE_ROWS,
    worked_example_block,
)

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
TESTS = ROOT / "tests"


def section(text: str, title: str) -> str:
    """The text of the `## title` section of a Markdown document, its subsections included."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match is not None, f"no section '## {title}'"
    return match.group(1)


def commands(command, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], object]]:
    """Every command under the click command `command`, itself included, with its path."""
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from commands(sub, (*path, name))


def long_options(command) -> list[str]:
    """The visible long options of a click command (`--help` is click's own)."""
    return [
        name
        for param in command.params
        if param.param_type_name == "option" and not getattr(param, "hidden", False)
        for name in (*param.opts, *param.secondary_opts)
        if name.startswith("--")
    ]


# Typer bundles its own copy of click, so commands and options are told apart by their
# attributes (`commands`, `param_type_name`), not by the classes of the click package.
COMMANDS = dict(commands(typer.main.get_command(app), ("accounts-job",)))


def test_the_app_has_the_commands_this_test_walks() -> None:
    """Guard the walk itself: a change in Typer that hid the commands would pass the
    tests below vacuously."""
    assert set(COMMANDS) >= {
        ("accounts-job",),
        ("accounts-job", "run"),
        ("accounts-job", "state"),
        ("accounts-job", "state", "show"),
    }
    assert {"--out", "--rejects", "--batch-size"} <= set(
        long_options(COMMANDS[("accounts-job", "run")])
    )
    assert "--json" in long_options(COMMANDS[("accounts-job", "state", "show")])


@pytest.mark.parametrize("path", list(COMMANDS), ids=" ".join)
def test_every_command_is_in_the_command_line_section(path: tuple[str, ...]) -> None:
    usage = section(README.read_text(encoding="utf-8"), "Command line")
    assert re.search(rf"(?<![\w-]){re.escape(' '.join(path))}(?![\w-])", usage), (
        f"README.md's 'Command line' section does not show `{' '.join(path)}`"
    )


@pytest.mark.parametrize("path", list(COMMANDS), ids=" ".join)
def test_every_option_is_documented(path: tuple[str, ...]) -> None:
    readme = README.read_text(encoding="utf-8")
    missing = [
        option
        for option in long_options(COMMANDS[path])
        if not re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", readme)
    ]
    assert missing == [], f"README.md does not mention {missing} of `{' '.join(path)}`"


# docs/rules.md


def test_the_worked_example_is_read_from_section_9() -> None:
    """support/example.py finds the three blocks of docs/rules.md §9, and they fit."""
    text = RULES.read_text(encoding="utf-8")
    nine = section(text, "9. A worked example")
    for name in ("input", "accounts", "rejects"):
        assert f"<!-- worked-example:{name} -->" in nine
    assert WORKED_EXAMPLE.startswith("type,client,tx,amount\n")
    assert WORKED_EXAMPLE_CSV.startswith("client,available,held,total,locked\n")
    assert [row[0] for row in WORKED_EXAMPLE_ROWS] == [1, 2]
    lines = WORKED_EXAMPLE.splitlines()
    assert WORKED_EXAMPLE_REJECTS
    for line, _ in WORKED_EXAMPLE_REJECTS:
        assert 2 <= line <= len(lines)


def test_a_missing_worked_example_block_is_an_error() -> None:
    with pytest.raises(ValueError, match="worked-example:input"):
        worked_example_block("input", "# no example here\n")
    with pytest.raises(ValueError, match="not followed by a ```csv block"):
        worked_example_block("input", "<!-- worked-example:input -->\ntext\n")


def test_every_section_the_tests_cite_exists() -> None:
    """Tests cite docs/rules.md as §N or §N.M: each such section is a heading there."""
    headings = set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", RULES.read_text(), re.MULTILINE))
    assert {"2.1", "4.2", "9"} <= headings
    cited: dict[str, set[str]] = {}
    for path in TESTS.rglob("*.py"):
        for number in re.findall(r"§(\d+(?:\.\d+)?)", path.read_text(encoding="utf-8")):
            cited.setdefault(number, set()).add(path.relative_to(TESTS).as_posix())
    assert cited
    assert {n: sorted(files) for n, files in cited.items() if n not in headings} == {}
