"""``python -m patchbay`` is the ``patchbay`` command."""

import sys

from .cli import main

sys.exit(main())
