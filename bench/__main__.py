"""``python -m bench NAME`` runs a benchmark; ``python -m bench`` (or ``--list``) lists them."""

from __future__ import annotations

import argparse
import sys

from bench.registry import Benchmark, discover


def build_parser(found: dict[str, Benchmark]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run a LeadLoop benchmark on generated data in its own database "
        "(leadloop_bench_NAME) and print its figures; results go to bench/results/NAME.json.",
    )
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    sub = parser.add_subparsers(dest="name", metavar="NAME")
    for bench in found.values():
        child = sub.add_parser(bench.name, help=bench.description, description=bench.description)
        child.add_argument(
            "--repeat", type=int, default=15, help="timed runs per figure (median; default 15)"
        )
        child.add_argument(
            "--warmup", type=int, default=2, help="untimed runs before each figure (default 2)"
        )
        bench.add_arguments(child)
    return parser


def list_benchmarks(found: dict[str, Benchmark]) -> None:
    print("Benchmarks (run one with: python -m bench NAME):")
    width = max((len(n) for n in found), default=0)
    for bench in found.values():
        print(f"  {bench.name.ljust(width)}  {bench.description}")


def main(argv: list[str] | None = None) -> int:
    found = discover()
    args = build_parser(found).parse_args(argv)
    if args.list or not args.name:
        list_benchmarks(found)
        return 0

    from bench import environment

    environment.setup(args.name)

    from bench.report import report

    report(found[args.name].run(args))
    # Missing the target is a finding, not a failure: the run itself succeeded.
    return 0


if __name__ == "__main__":
    sys.exit(main())
