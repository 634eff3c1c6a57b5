"""What a scheme builder receives and returns."""

from dataclasses import dataclass, field


@dataclass
class Job:
    """One scheme to run: the model (never mutated), the data and the settings.

    ``progress(fraction, message)`` reports progress within this job (0..1).
    ``float32`` returns the sweep's shared float32 conversion (see :meth:`float32_model`).
    ``calibrations`` is the folder where LiteRT Quantizer's calibrations are shared with the sweep's other
    workers (:func:`optlib.engine.lq_backend.calibrate`), or None.
    """

    scheme: str
    model: object
    data: object
    settings: dict
    progress: object = lambda fraction, message: None
    float32: object = None
    calibrations: object = None

    def representative(self):
        return self.data.representative(int(self.settings["rep_samples"]))

    def float32_model(self):
        """Return (float32 TFLite bytes, {"convert_s", "reused"}): converted once and shared when the job
        runs in a sweep's context, else converted now."""
        if self.float32 is not None:
            return self.float32()
        import time

        from optlib.engine.convert import convert

        started = time.perf_counter()
        made = convert(self.model, {})
        return made, {"convert_s": round(time.perf_counter() - started, 2), "reused": False}


@dataclass
class Built:
    """What a builder made: the TFLite bytes and the recipe that made them.

    Attributes:
        tflite: the converted model.
        recipe: converter settings plus any training steps, as plain data.
        model: the Keras model that was converted (for its own accuracy).
        extra: further measured facts (training time, ...).
    """

    tflite: bytes
    recipe: dict
    model: object = None
    extra: dict = field(default_factory=dict)
