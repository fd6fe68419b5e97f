"""``python run_cli.py '[[argv...], [argv...]]'``: several ``augment`` commands in one process.

Exits with the first non-zero exit code, else 0.
"""

import json
import sys

from augment.cli import main

if __name__ == "__main__":
    for argv in json.loads(sys.argv[1]):
        code = main(argv)
        if code:
            sys.exit(code)
