"""``python -m pipeline``: the project's command line."""

import os
import sys

from pipeline.cli import main

try:
    status = main()
    sys.stdout.flush()
except BrokenPipeError:
    # the reader went away (`python -m pipeline usecases | head`): no traceback, as cat or ls would;
    # stdout is pointed at /dev/null so the interpreter's final flush does not fail again
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    status = 141  # 128 + SIGPIPE, what a shell reports for a killed writer
sys.exit(status)
