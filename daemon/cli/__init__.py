"""The ``pssync`` command line: one module per command group, assembled in :mod:`.main`."""

from .main import build_parser as build_parser
from .main import main as main
