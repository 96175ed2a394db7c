"""``python -m collector`` runs the ``collector`` command."""

import sys

from collector.cli import main

sys.exit(main())
