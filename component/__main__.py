"""``python -m component`` is the ``orgchat`` command."""

import sys

from component.cli import main

sys.exit(main())
