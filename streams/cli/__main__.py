"""``python -m streams.cli``: the same as the ``revpulse`` command."""

import sys

from streams.cli.main import main

sys.exit(main())
