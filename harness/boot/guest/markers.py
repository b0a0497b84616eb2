"""What the guest's init (init.c) prints on the console, for the host to match.

Keep in step with the say() calls in init.c.
"""

from __future__ import annotations

import re

INIT_START = "kbulk-init: start"
INIT_DONE = "kbulk-init: done"
STEP_BEGIN = re.compile(r"kbulk-init: step begin insmod (\S+)")
STEP_END = re.compile(r"kbulk-init: step end insmod (\S+) rc=(-?\d+)")
