"""`python -m soundforge` runs the command line."""

import sys

from soundforge.cli import main

sys.exit(main())
