"""``python -m augment`` (and ``torchrun ... -m augment generate ...``): the ``augment`` command."""

import sys

from augment.cli import main

sys.exit(main())
