"""Where a benchmark writes its report: the published results, or a scratch directory for --quick.

Quick runs are routine checks; writing them over the published full-size results would make the
README's numbers disagree with the files it links to.
"""

from __future__ import annotations

import argparse
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "benchmarks" / "results"
QUICK_RESULTS = REPO_ROOT / ".bench" / "quick"


def add_out_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"output directory (default {RESULTS.relative_to(REPO_ROOT)}, "
        f"with --quick {QUICK_RESULTS.relative_to(REPO_ROOT)})",
    )


def output_directory(args: argparse.Namespace) -> Path:
    if args.out is not None:
        return Path(args.out)
    return QUICK_RESULTS if getattr(args, "quick", False) else RESULTS
