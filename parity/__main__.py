"""`python -m parity ...`: see parity.cli."""

import sys

from .workers import start_server

if __name__ == "__main__":
    # `check` and `report` run every implementation in children of the fork server: started
    # here, it imports torch while this process does (below), on the other core. A guess from
    # the arguments: help, and `report --from` (which renders saved results), need no children.
    args = sys.argv[1:]
    if args[:1] in (["check"], ["report"]) and not any(
        a in ("-h", "--help") or a.split("=")[0] == "--from" for a in args
    ):
        start_server()

    from .cli import main

    sys.exit(main())
