"""What a scheme builder receives and returns."""

from dataclasses import dataclass, field


@dataclass
class Job:
    """One scheme to run: the model (never mutated), the data and the settings.

    ``progress(fraction, message)`` reports progress within this job (0..1).
    """

    scheme: str
    model: object
    data: object
    settings: dict
    progress: object = lambda fraction, message: None

    def representative(self):
        return self.data.representative(int(self.settings["rep_samples"]))


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
