"""The ``luce`` application object and its error handling.

Every failure ends the same way: one line on stderr, ``luce <command>: error: <what and what to do>``,
and exit status 2 for usage errors (a missing option, an invalid value) or 1 for data and model errors
(a missing file, a bad column, a corrupted model). A traceback is printed only with ``--debug`` (or
``LUCE_DEBUG=1``), anywhere on the command line.
"""

from __future__ import annotations

import os
import sys
import traceback
import warnings
from typing import Annotated

import typer
from typer.core import TyperGroup

__all__ = ["CLIError", "DataError", "app", "console", "err_console", "main", "warn"]


class CLIError(Exception):
    """An error the user can fix; its message is printed as one line. Exit status 1."""

    exit_code = 1


class DataError(CLIError):
    """Bad data or model input (missing column, NaN, unknown format, ...). Exit status 1."""


def _debug_requested(args: list[str]) -> tuple[bool, list[str]]:
    """Strip ``--debug`` from anywhere before a ``--`` separator; also honour ``LUCE_DEBUG``."""
    end = args.index("--") if "--" in args else len(args)
    debug = "--debug" in args[:end] or os.environ.get("LUCE_DEBUG", "") not in ("", "0")
    return debug, [a for i, a in enumerate(args) if not (i < end and a == "--debug")]


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _message(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.strerror}: {exc.filename}"
    text = str(exc)
    return text if text else type(exc).__name__


def _print_error(prog: str, message: str) -> None:
    sys.stderr.write(f"{prog}: error: {_one_line(message)}\n")
    sys.stderr.flush()


_ORDER = ["softmax", "plot", "demo", "train", "predict", "evaluate", "calibrate", "info", "export"]


class LuceGroup(TyperGroup):
    """The root command group: turns every exception into one stderr line and an exit status."""

    def list_commands(self, ctx):
        # The order a newcomer meets them in, not the order the modules were imported.
        names = super().list_commands(ctx)
        return sorted(names, key=lambda n: (_ORDER.index(n) if n in _ORDER else len(_ORDER), n))

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        args = list(sys.argv[1:] if args is None else args)
        debug, args = _debug_requested(args)
        prog = prog_name or "luce"
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            code = rv if isinstance(rv, int) and not isinstance(rv, bool) else 0
        except typer.Exit as e:
            code = e.exit_code
        except KeyboardInterrupt:
            _print_error(prog, "interrupted")
            code = 130
        except Exception as e:
            code = _handle(e, prog, debug)
        if standalone_mode:
            sys.exit(code)
        return code


def _handle(e: Exception, prog: str, debug: bool) -> int:
    ctx = getattr(e, "ctx", None)
    if type(e).__name__ == "NoArgsIsHelpError":  # `luce` or `luce plot` alone: show the help, succeed
        sys.stdout.write(e.format_message() + "\n")
        return 0
    if type(e).__name__ == "Abort":
        _print_error(prog, "aborted")
        return 1
    if debug:
        traceback.print_exception(e)
    if hasattr(e, "format_message") and isinstance(getattr(e, "exit_code", None), int):
        # Click's usage errors (exit 2) and file errors (exit 1), as raised by Typer's parser.
        where = ctx.command_path if ctx is not None else prog
        hint = f" (see '{where} --help')" if e.exit_code == 2 else ""
        _print_error(where, e.format_message().rstrip(".") + hint)
        return e.exit_code
    where = _current_command(prog)
    if isinstance(e, ModuleNotFoundError) and e.name:
        # An optional dependency missing at the moment a command needs it.
        _print_error(where, f"this command needs the module {e.name!r}: pip install 'luce[cli]'")
        return 1
    if isinstance(e, CLIError):
        _print_error(where, str(e))
        return e.exit_code
    from ..io import ModelFormatError

    if isinstance(e, ModelFormatError | OSError | ValueError | TypeError | MemoryError):
        _print_error(where, _message(e))
        return 1
    _print_error(
        where,
        f"internal error: {type(e).__name__}: {_message(e)}" + ("" if debug else " (rerun with --debug)"),
    )
    return 1


_COMMAND: list[str] = []


def _current_command(prog: str) -> str:
    return " ".join([prog, *_COMMAND[-1:]]) if _COMMAND else prog


def _track(ctx: typer.Context) -> None:
    # Remember which command runs, for the error line ("luce train: error: ...").
    _COMMAND.clear()
    if ctx.invoked_subcommand:
        _COMMAND.append(ctx.invoked_subcommand)


def console():
    """A Rich console on the current stdout (tests swap stdout, so never cache it)."""
    from rich.console import Console

    return Console(
        file=sys.stdout, highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 110
    )


def err_console():
    from rich.console import Console

    return Console(
        file=sys.stderr, highlight=False, soft_wrap=True, width=None if sys.stderr.isatty() else 110
    )


def warn(prog_command: str, message: str) -> None:
    """One warning line on stderr."""
    sys.stderr.write(f"{prog_command}: warning: {_one_line(message)}\n")


def show_warnings(command: str, caught: list[warnings.WarningMessage]) -> None:
    seen = set()
    for w in caught:
        text = _one_line(str(w.message))
        if text not in seen:
            seen.add(text)
            warn(f"luce {command}", text)


app = typer.Typer(
    name="luce",
    cls=LuceGroup,
    help=(
        "luce — the softmax toolkit. Compute and explain softmax, train softmax-regression classifiers "
        "on CSV/TSV/Parquet tables, predict, evaluate, calibrate, describe, export to ONNX, and draw the "
        "classic figures."
    ),
    epilog="Add --debug anywhere to see the full traceback of an error. Docs: docs/cli.md.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"luce {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Print the full traceback of an error.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    _track(ctx)


def main() -> None:
    """Run the application (``luce.cli.main`` checks the extras first)."""
    app()
