"""The ``wsol`` command (``wsol.cli:main``): one module per command group, option helpers in
:mod:`wsol.cli.options`. Nothing else in wsol imports this package."""
from wsol.cli.app import build_parser, main

__all__ = ["build_parser", "main"]
