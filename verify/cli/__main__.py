"""``python -m verify.cli ...``: the ``verify`` command."""
import sys

from .app import main

sys.exit(main())
