"""``python -m pipeline``: the project's command line."""
import sys

from pipeline.cli import main

sys.exit(main())
