"""plastinet: fast weight programmers as plastic rate and spiking networks."""

from plastinet._version import __version__


def __getattr__(name: str):
    # lazy, so that ``import plastinet`` stays light
    if name == "simulate":
        from plastinet.simulation import simulate

        return simulate
    raise AttributeError(f"module 'plastinet' has no attribute {name!r}")


__all__ = ["__version__", "simulate"]
