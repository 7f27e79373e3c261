"""python -m agent: the lookout CLI."""

import sys

from agent.cli import main

sys.exit(main())
