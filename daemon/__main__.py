"""``python -m daemon`` is the ``pssync`` command."""

import sys

from daemon.cli import main

sys.exit(main())
