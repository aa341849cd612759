"""`python -m parity ...`: see parity.cli."""

import sys

from .workers import start_server

if __name__ == "__main__":
    # `check` and `report` run every implementation in children of the fork server: started
    # here, it imports torch while this process does (below), on the other core. A guess from
    # the first argument: `report --from` needs no children, and the server then idles.
    if sys.argv[1:2] in (["check"], ["report"]) and not {"-h", "--help"} & set(sys.argv):
        start_server()

    from .cli import main

    sys.exit(main())
