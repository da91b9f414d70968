"""Characters never part of a value, in a CSV field, a setting or text taken from mail: C0 and
C1 control characters, DEL, and the line and paragraph separators (which Python's
`splitlines` breaks lines at)."""

import re

CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
