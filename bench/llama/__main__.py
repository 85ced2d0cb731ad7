"""`python -m bench.llama`: see bench.llama.cli."""
import sys

from bench.llama.cli import main

sys.exit(main())
