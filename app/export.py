"""`python -m app.export`: write the whole dataset to a versioned JSON archive (see --help)."""

import sys

from app.archive.cli import export_main

if __name__ == "__main__":
    sys.exit(export_main())
