"""``python -m spechub_cli``: the ``spechub`` command."""

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
