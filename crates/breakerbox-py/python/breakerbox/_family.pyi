"""Type stubs for breakerbox._family: BreakerFamily lives in the package stub."""

from . import BreakerFamily as BreakerFamily

__all__ = ["BreakerFamily"]
