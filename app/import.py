"""`python -m app.import FILE`: restore an archive into an empty database (see --help).

`import` is a keyword, so this module cannot be imported by name; `python -m` (runpy) and
`importlib.import_module("app.import")` can still run it.
"""

import sys

from app.archive.cli import import_main

if __name__ == "__main__":
    sys.exit(import_main())
