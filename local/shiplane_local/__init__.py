"""Shiplane's user-side tooling: the embedded local cloud (and the command line).

`LocalCloud` runs the SAM application on moto inside one Python process; nothing in
`functions/` or `layers/` knows that it exists.
"""

from .cloud import LocalCloud

__all__ = ["LocalCloud"]
