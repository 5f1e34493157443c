"""`python -m cnnvis info`: to be written. Keep heavy imports (torch, vispy, Qt) inside run()."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    raise SystemExit("cnnvis info: not implemented yet")
