"""optlib: run TensorFlow Lite model-optimization schemes for real and measure them.

    import optlib

    result = optlib.sweep("digits_cnn", "digits", "float32,int8")
    result.frame()                      # a pandas DataFrame, deltas to float32 included
    optlib.search("digits_cnn", "digits", max_loss=0.01)
    optlib.recommend(data="representative", hardware="edgetpu")
    optlib.schemes.names()              # the registry
    optlib.Store().rows()               # everything stored

Importing this package is cheap: TensorFlow is imported only when a model is
loaded, converted or measured (see ``optlib._keras``).
"""

__version__ = "0.2.0"

from optlib.api import SweepResult, recommend, search, sweep  # noqa: F401
from optlib.engine import schemes  # noqa: F401
from optlib.engine.store import Store  # noqa: F401
from optlib.errors import InputError  # noqa: F401

__all__ = ["sweep", "search", "recommend", "schemes", "Store", "SweepResult", "InputError"]
