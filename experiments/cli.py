"""What the commands in experiments/ share: one-line errors."""

import sys


def exit_with_error(e: BaseException) -> None:
    """Exits with ``error: <first line of e>``; library errors can carry multi-line detail
    (e.g. orbax's tree diffs) that would bury the one line that names the bad value."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    sys.exit(f"error: {lines[0] if lines else type(e).__name__}")
