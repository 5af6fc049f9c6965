"""`python -m mlpipe.cli`: the `mlpipe` command (as the stages, demo and tests start it)."""

from mlpipe.cli import main

raise SystemExit(main())
