"""Command-line options that `pesto-pack` and `pesto-serve` share, written once so that they
read the same in every command's `--help`."""

import argparse


def add_profiles_option(
    parser: argparse.ArgumentParser, help: str = "profiles to apply, in order (e.g. -p gpu stateful)"
) -> None:
    """`-p/--profile PROFILE ...`, repeatable, into `args.profiles` (a list, in order)."""
    parser.add_argument(
        "-p",
        "--profile",
        dest="profiles",
        action="extend",
        nargs="+",
        default=[],
        metavar="PROFILE",
        help=help,
    )
