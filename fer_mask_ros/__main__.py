"""`python -m fer_mask_ros <command>`: the CLI (fer_mask_ros/cli)."""
from __future__ import annotations

import sys

from fer_mask_ros.cli import main

sys.exit(main())
