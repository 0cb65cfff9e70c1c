"""``python -m plstm_graph ARGS`` is ``plstm-graph ARGS`` (and what ``torchrun -m`` runs)."""
import sys

from .cli import main

sys.exit(main())
