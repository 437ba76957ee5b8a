"""``python -m obliviate.cli``: the same as the ``obliviate`` command."""
import sys

from obliviate.cli import main

sys.exit(main())
