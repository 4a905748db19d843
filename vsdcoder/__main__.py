"""``python -m vsdcoder``: the same as the ``vsdcoder`` command."""

import sys

from vsdcoder.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
