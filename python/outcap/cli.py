"""The ``outcap`` command line: ``outcap run [options] -- COMMAND`` and ``outcap show RECORD``."""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import time
from typing import IO, List, Optional

from . import __version__
from ._config import OutputCaptureConfig
from ._native import CaptureError
from ._output import ProcessOutput
from ._process import Process, TimeoutExpired, spawn

__all__ = ["main", "parse_size"]

#: Exit status when the command's timeout passed, as timeout(1) uses.
EXIT_TIMED_OUT = 124
#: Exit status when the command could not be executed, as shells use.
EXIT_NOT_EXECUTABLE = 126
#: Exit status when the command was not found, as shells use.
EXIT_NOT_FOUND = 127

_SIZE = re.compile(r"(?i)^\s*(\d+)\s*([kmgt]?)(i?b)?\s*$")
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_size(text: str) -> int:
    """Parse a byte count such as ``1048576``, ``512K``, ``10M`` or ``1G`` (powers of 1024)."""
    match = _SIZE.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"invalid size {text!r}; expected bytes as an integer with an optional K, M, G or T suffix (powers of 1024)"
        )
    size = int(match.group(1)) * _UNITS[match.group(2).lower()]
    if size > 2**63 - 1:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}; expected at most 8 EiB (2**63 - 1 bytes)")
    return size


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value >= 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"invalid number of seconds {text!r}; expected a finite number >= 0")
    return value


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="outcap",
        description="Run a command and capture its stdout and stderr in bounded memory.",
    )
    parser.add_argument("--version", action="version", version=f"outcap {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{run,show}")

    run_parser = commands.add_parser(
        "run",
        help="run a command, show its output and summary, optionally write the record as JSON",
        description=(
            "Run COMMAND with outcap's stdin, show its output live (stdout to stdout, stderr to stderr) while capturing it, print a one-line summary to stderr and exit with "
            "the command's exit code (128+N when killed by signal N, 124 when --timeout passed, "
            "126 when it cannot be executed, 127 when it is not found)."
        ),
    )
    defaults = OutputCaptureConfig()
    run_parser.add_argument(
        "--max-buffer-size",
        type=parse_size,
        default=defaults.max_buffer_size,
        metavar="SIZE",
        help="ring buffer capacity per stream in bytes, e.g. 512K or 10M (default: 10M); the newest bytes are kept",
    )
    run_parser.add_argument(
        "--flush-interval",
        type=_seconds,
        default=defaults.flush_interval,
        metavar="SECONDS",
        help="longest time in seconds a read byte waits before the live view shows it (default: 0.1)",
    )
    run_parser.add_argument(
        "--compression-threshold",
        type=parse_size,
        default=defaults.compression_threshold,
        metavar="SIZE",
        help="gzip the stored output when stdout + stderr exceed SIZE bytes (default: 1M)",
    )
    run_parser.add_argument("--no-compression", action="store_true", help="never compress the stored output")
    run_parser.add_argument("--keep-ansi", action="store_true", help="keep ANSI escape sequences")
    run_parser.add_argument(
        "--timeout", type=_seconds, metavar="SECONDS", help="end the command's process group after SECONDS"
    )
    run_parser.add_argument(
        "--kill-grace",
        type=_seconds,
        default=0.5,
        metavar="SECONDS",
        help="seconds between SIGTERM and SIGKILL when ending the command (default: 0.5)",
    )
    run_parser.add_argument(
        "--quiet", "-q", action="store_true", help="do not show the command's output live (it is still captured)"
    )
    run_parser.add_argument(
        "--json",
        metavar="PATH",
        help="write the ProcessOutput record as JSON to PATH ('-' writes it to stdout and hides the output)",
    )
    run_parser.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARG...]")

    show_parser = commands.add_parser(
        "show",
        help="print a stored record's output and summary",
        description="Print the output stored in a ProcessOutput JSON record (stdout to stdout, stderr to "
        "stderr) and its one-line summary to stderr.",
    )
    show_parser.add_argument("record", metavar="RECORD.json", help="a ProcessOutput JSON record")
    return parser


def _format_size(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    raise AssertionError("unreachable")


def _summary(output: ProcessOutput, status: str) -> str:
    flags = [flag for flag, on in (("truncated", output.truncated), ("compressed", output.compressed)) if on]
    extra = f", {', '.join(flags)}" if flags else ""
    return (
        f"outcap: {status} in {output.duration.total_seconds():.3f}s; "
        f"stdout {_format_size(output.stdout_size)}, stderr {_format_size(output.stderr_size)}{extra}"
    )


def _status(exit_code: Optional[int], timed_out: bool) -> str:
    if timed_out:
        return "timed out"
    if exit_code is None:
        return "no exit code"
    if exit_code < 0:
        try:
            name = signal.Signals(-exit_code).name
        except ValueError:
            name = f"signal {-exit_code}"
        return f"killed by {name}"
    return f"exit {exit_code}"


def _write(stream: IO[str], data: bytes) -> None:
    stream.flush()
    stream.buffer.write(data)  # type: ignore[attr-defined]
    stream.flush()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _show_live(process: Process, timeout: Optional[float]) -> None:
    """Copy the command's output to our stdout and stderr as it arrives.

    Stops at the end of the output, or when ``timeout`` (seconds since the
    start) passes, so that ``wait()`` can end the command.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    deadline = None if timeout is None else time.monotonic() + timeout
    chunks = process._open_stream("both")
    while True:
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            chunk = chunks.next(remaining)
        except TimeoutError:
            return
        if chunk is None:
            return
        if chunk.skipped:
            # The reader of our output fell more than a ring behind the command.
            sys.stderr.write(
                f"\noutcap: the live view skipped {chunk.skipped} bytes of {chunk.stream} "
                "that its reader was too slow for; the record keeps the newest bytes\n"
            )
            sys.stderr.flush()
        _write_all(1 if chunk.stream == "stdout" else 2, chunk.data)


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


class _Terminated(Exception):
    """A signal that ends outcap itself arrived; the command's group must end too."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum: int, frame: object) -> None:
    raise _Terminated(signum)


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    argv: List[str] = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        parser.error("run: missing COMMAND; usage: outcap run [options] -- COMMAND [ARG...]")
    try:
        config = OutputCaptureConfig(
            max_buffer_size=args.max_buffer_size,
            flush_interval=args.flush_interval,
            compression_enabled=not args.no_compression,
            compression_threshold=args.compression_threshold,
            process_ansi=not args.keep_ansi,
        )
    except ValueError as error:
        message = str(error)
        for field in ("max_buffer_size", "flush_interval", "compression_threshold"):
            message = message.replace(field, "--" + field.replace("_", "-"))
        parser.error(f"run: {message}")

    show_output = not args.quiet and args.json != "-"
    config.streaming_enabled = show_output
    record: Optional[IO[str]] = None
    created = False
    if args.json and args.json != "-":
        # Open the record first, so a command is never run for a record that
        # cannot be written; append mode keeps an old record until the new
        # one replaces it.
        created = not os.path.exists(args.json)
        try:
            record = open(args.json, "a", encoding="utf-8")
        except OSError as error:
            parser.error(f"run: cannot write --json {args.json}: {error.strerror}")
    try:
        code = _run_command(args, parser, argv, config, record)
    finally:
        if record is not None:
            record.close()
    if record is not None and created and os.path.getsize(args.json) == 0:
        os.remove(args.json)
    return code


def _run_command(
    args: argparse.Namespace,
    parser: argparse.ArgumentParser,
    argv: List[str],
    config: OutputCaptureConfig,
    record: Optional[IO[str]],
) -> int:
    show_output = config.streaming_enabled
    timed_out = False
    try:
        stdin = 0 if _is_open(0) else None
        with spawn(
            argv, config=config, timeout=args.timeout, kill_grace=args.kill_grace, stdin=stdin
        ) as process:
            if show_output:
                _show_live(process, args.timeout)
            try:
                result = process.wait()
            except TimeoutExpired as error:
                assert error.result is not None
                result, timed_out = error.result, True
    except FileNotFoundError as error:
        print(f"outcap: command not found: {error.filename or argv[0]}", file=sys.stderr)
        return EXIT_NOT_FOUND
    except PermissionError as error:
        print(f"outcap: cannot execute {error.filename or argv[0]}: {error.strerror}", file=sys.stderr)
        return EXIT_NOT_EXECUTABLE
    except MemoryError:
        parser.error(f"run: cannot allocate two ring buffers of --max-buffer-size {args.max_buffer_size} bytes")

    output = result.output
    if args.json == "-":
        sys.stdout.write(output.to_json() + "\n")
        sys.stdout.flush()
    elif record is not None:
        record.seek(0)
        record.truncate()
        record.write(output.to_json() + "\n")
    print(_summary(output, _status(output.exit_code, timed_out)), file=sys.stderr)

    if timed_out:
        return EXIT_TIMED_OUT
    code = output.exit_code if output.exit_code is not None else 0
    return 128 - code if code < 0 else code


def _show(args: argparse.Namespace) -> int:
    try:
        with open(args.record, encoding="utf-8") as record:
            output = ProcessOutput.from_json(record.read())
        stdout, stderr = output.get_stdout(), output.get_stderr()
    except OSError as error:
        print(f"outcap: cannot read record {args.record}: {error.strerror}", file=sys.stderr)
        return 1
    except (ValueError, CaptureError) as error:
        print(f"outcap: cannot read record {args.record}: {error}", file=sys.stderr)
        return 1
    _write(sys.stdout, stdout)
    _write(sys.stderr, stderr)
    print(_summary(output, _status(output.exit_code, False)), file=sys.stderr)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``) and return the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command == "run":
        # The command runs in its own process group, so signals that a
        # terminal, timeout(1) or a CI runner send to outcap would not reach
        # it: turn them into an exception, and the with block ends the group.
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, _raise_terminated)
    try:
        if args.command == "run":
            return _run(args, parser)
        return _show(args)
    except _Terminated as error:
        return 128 + error.signum
    except BrokenPipeError:
        # The reader of our stdout went away (e.g. `| head`); that is not an error of the command.
        sys.stderr.close()
        return 1
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
