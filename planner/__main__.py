"""`python -m planner` (and the `planner` script) runs the command line."""

import os
import sys


def run() -> None:
    # Importing the command line takes a moment; Ctrl-C during it is a quiet exit 130, not a traceback.
    # So is Ctrl-C while an error is being reported (main handles it everywhere else).
    try:
        from planner.cli import main

        main()
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted.\n")
        os._exit(130)


if __name__ == "__main__":
    run()
