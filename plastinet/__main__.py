"""``python -m plastinet``: the command line."""

import sys

from plastinet.cli import main

sys.exit(main())
