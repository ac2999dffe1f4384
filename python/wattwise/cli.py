"""The ``wattwise`` command line: one subcommand per task, errors on stderr with non-zero
exit codes."""

from __future__ import annotations

import argparse
import sys


def _add_demo(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="the end-to-end efficiency review on a CNN trained on digits (offline)",
        description="Train a small CNN on scikit-learn's digits, build pruned, quantized, "
        "early-exit and combined variants, compare them with energy tracking, write "
        "review.html.",
    )
    p.add_argument("--out-dir", default=".", help="where review.html/.md/.json go")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    p.add_argument("--repeats", type=int, default=30, help="timed runs per variant and batch")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_run_demo)


def _run_demo(args) -> int:
    from .demo import run_demo

    return run_demo(
        out_dir=args.out_dir,
        batch_sizes=args.batch_sizes,
        repeats=args.repeats,
        progress=not args.no_progress,
    )


def _add_energy(sub) -> None:
    from .energy.cli import add_energy_parser

    add_energy_parser(sub)


def _add_compare(sub) -> None:
    from .review.cli import add_compare

    add_compare(sub)


def _add_report(sub) -> None:
    from .review.cli import add_report

    add_report(sub)


# Each entry adds one subcommand; pillars register theirs here.
_SUBCOMMANDS = [_add_demo, _add_energy, _add_compare, _add_report]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wattwise", description="Measure and cut the energy of PyTorch models."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for add in _SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        print(f"wattwise {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
