"""``python -m qeqprop.native``: build the native CPU kernel ahead of time (``build.main``)."""

import sys

from .build import main

sys.exit(main())
