"""``python -m gpukpm`` runs the command-line interface."""
import sys

from gpukpm.run.cli import main

sys.exit(main())
