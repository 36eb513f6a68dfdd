"""`python -m juhe`: the command line in `juhe.cli`."""

from .cli import main

raise SystemExit(main())
