"""``python -m pedsense`` runs the CLI."""

import sys

from pedsense.cli import main

sys.exit(main())
