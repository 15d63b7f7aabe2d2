"""Running one benchmark row's process under py-spy (``--profile``), shared by the SFTP and HTTP tables."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

#: py-spy's output formats, and the extension each is written with
PROFILE_FORMATS = {"flamegraph": "svg", "raw": "txt", "speedscope": "json"}


def add_profile_arguments(parser: argparse.ArgumentParser, *, rows: str = "row") -> None:
    parser.add_argument(
        "--profile",
        action="store_true",
        help=f"with --only: a py-spy profile per {rows} (implies --keep-home)",
    )
    parser.add_argument(
        "--profile-format",
        choices=PROFILE_FORMATS,
        default="flamegraph",
        help="with --profile: py-spy's output, e.g. raw (collapsed stacks, one a line, to grep or sum)",
    )


def check_profile_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Profiling distorts timings: only with ``--only`` (no report), and it keeps the logs."""
    if args.profile and not args.only:
        parser.error("--profile distorts the timings: use it with --only, which writes no report")
    if args.profile_format != "flamegraph" and not args.profile:
        parser.error("--profile-format goes with --profile")
    args.keep_home = args.keep_home or args.profile


def under_py_spy(command: list[str], profile_format: str, stem: Path) -> tuple[list[str], Path]:
    """``command`` run by py-spy, and the file its profile goes to (``stem`` + the format's extension)."""
    output = stem.with_name(f"{stem.name}.{PROFILE_FORMATS[profile_format]}")
    wrapped = [
        str(Path(sys.executable).with_name("py-spy")),
        "record",
        "--format",
        profile_format,
        "-o",
        str(output),
        "--",
        *command,
    ]
    return wrapped, output
