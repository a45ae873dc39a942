"""``python -m kerasmt`` = the ``kerasmt`` command."""
import sys

from kerasmt.cli import main

sys.exit(main())
