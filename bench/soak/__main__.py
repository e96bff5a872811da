"""``python -m scalesim.bench.soak``: runs :func:`~.command.main` and exits with its status."""

from .command import main

raise SystemExit(main())
