"""optlib: run TensorFlow Lite model-optimization schemes for real and measure them.

Importing this package is cheap: TensorFlow is imported only when a model is
loaded, converted or measured (see ``optlib._keras``).
"""

__version__ = "0.1.0"

from optlib.errors import InputError  # noqa: F401  (re-exported)
