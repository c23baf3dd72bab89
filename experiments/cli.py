"""What the commands in experiments/ share: one-line errors, flag parsing.

Flag definitions stay in the command modules; this module defines none, so tests can import it
beside any command."""

import sys


def exit_with_error(e: BaseException) -> None:
    """Exits with ``error: <first line of e>``; library errors can carry multi-line detail
    (e.g. orbax's tree diffs) that would bury the one line that names the bad value."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    sys.exit(f"error: {lines[0] if lines else type(e).__name__}")


def with_overrides(section, **values):
    """A resolved copy of a stored run's config ``section`` with every value that is not
    None set: the command-line overrides (None = the flag was not given)."""
    out = section.copy_and_resolve_references()
    for key, value in values.items():
        if value is not None:
            out[key] = value
    return out


def parse_rgb(values: list[str], *, flag: str) -> tuple[float, float, float]:
    """``["R", "G", "B"]`` -> floats in [0, 255]; a one-line ValueError naming ``flag``."""
    try:
        rgb = tuple(float(v) for v in values)
    except ValueError:
        rgb = ()
    if len(rgb) != 3 or not all(0.0 <= v <= 255.0 for v in rgb):
        raise ValueError(f"{flag} {','.join(values)!r}: expected three numbers R,G,B in 0..255")
    return rgb
