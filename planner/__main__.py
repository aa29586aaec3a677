"""`python -m planner` (and the `planner` script) runs the command line."""

import os
import sys


def run() -> None:
    # Importing the command line takes a moment; Ctrl-C during it is a quiet exit 130, not a traceback.
    try:
        from planner.cli import main
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted.\n")
        os._exit(130)
    main()


if __name__ == "__main__":
    run()
