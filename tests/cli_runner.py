"""The luce command driven in-process (Typer's CliRunner), shared by the CLI test modules."""

import re

from typer.testing import CliRunner

from luce.cli import app

runner = CliRunner()


def run(*args, code=0):
    """Run ``luce ARGS``; the exit code must be ``code`` (stdout and stderr shown otherwise)."""
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == code, (
        f"exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    return result


def fails(*args, code, match, prefix="luce"):
    """The command fails with ``code`` and exactly one stderr line, starting with ``prefix`` and
    matching ``match``: no traceback."""
    result = run(*args, code=code)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(prefix), lines[0]
    assert re.search(match, lines[0]), lines[0]
    return lines[0]
