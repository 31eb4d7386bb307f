"""``python -m gnet ...``: the command line (see :mod:`gnet.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
