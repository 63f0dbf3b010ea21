"""plastinet: fast weight programmers as plastic rate and spiking networks."""

from plastinet._version import __version__

__all__ = ["__version__"]
