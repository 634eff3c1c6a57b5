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

# Each name is imported when first read (PEP 562): a process that needs one module of optlib (a sweep's worker,
# a microcontroller check's helper) does not import the API, the registry and the store with it.
_EXPORTS = {"sweep": ("optlib.api", "sweep"), "search": ("optlib.api", "search"),
            "recommend": ("optlib.api", "recommend"), "SweepResult": ("optlib.api", "SweepResult"),
            "schemes": ("optlib.engine.schemes", None), "Store": ("optlib.engine.store", "Store"),
            "InputError": ("optlib.errors", "InputError")}

__all__ = list(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'optlib' has no attribute {name!r}")
    import importlib

    module, attribute = _EXPORTS[name]
    value = importlib.import_module(module)
    value = value if attribute is None else getattr(value, attribute)
    globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *_EXPORTS})
