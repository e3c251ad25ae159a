"""CLI commands of the solver layer: ``verify backends`` and ``verify encode``."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    pass
