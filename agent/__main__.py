"""`python -m agent` is the `evidence-agent` command."""

import sys

from agent.cli.main import main

sys.exit(main())
