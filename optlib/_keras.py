"""The one place that imports TensorFlow, tf-keras and the Model Optimization Toolkit.

TensorFlow 2.21 ships Keras 3, but tensorflow-model-optimization 0.8.1 needs
Keras 2; ``TF_USE_LEGACY_KERAS=1`` must be set before TensorFlow is imported.
Everything in optlib that needs these modules calls the functions below, so
``import optlib`` stays light and the environment is always set first.
"""

import functools
import logging
import os
import warnings


def import_environment(env):
    """``env`` as TensorFlow is imported with it: legacy Keras always; Keras's folder in the data folder, quiet
    native logs and no oneDNN unless ``env`` says otherwise. The starter (:mod:`optlib.engine.starter`)
    imports TensorFlow in the same environment as the children it forks."""
    from optlib import paths

    return {"KERAS_HOME": str(paths.keras_home()),  # not ~/.keras: Keras writes its config there
            "TF_CPP_MIN_LOG_LEVEL": "3", "TF_ENABLE_ONEDNN_OPTS": "0", **env, "TF_USE_LEGACY_KERAS": "1"}


@functools.cache
def tf():
    """Return the ``tensorflow`` module, imported with legacy Keras and quiet logs (:func:`import_environment`)."""
    os.environ.update(import_environment(os.environ))
    warnings.filterwarnings("ignore", module=r"tensorflow.*")
    warnings.filterwarnings("ignore", module=r"tf_keras.*")
    from optlib._quiet import native_stderr

    with native_stderr():
        import tensorflow

    cpus = int(os.environ.get("OPTLIB_CPUS") or 0)  # a job's CPU share, where an executor set one (Ray)
    if cpus:
        tensorflow.config.threading.set_intra_op_parallelism_threads(cpus)
        tensorflow.config.threading.set_inter_op_parallelism_threads(cpus)
    tensorflow.get_logger().setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)
    return tensorflow


@functools.cache
def keras():
    """Return ``tf_keras`` (Keras 2), the Keras that the toolkit works with."""
    tf()
    import tf_keras

    _read_keras_weights_whole()
    return tf_keras


def _read_keras_weights_whole():
    """Have tf_keras read a ``.keras`` file's weights (an HDF5 file stored in the zip) in one pass.

    tf_keras hands h5py the zip member itself, and Python 3.11 seeks a compressed member by reading it again
    from its start: h5py's thousands of seeks made loading quadratic in the weights' size (ResNet50's 103 MB
    took 12-14 s to load, EfficientNetB0's 16 MB 3 s of 5). Reading the member into memory once, then opening
    that, gives the same weights in 2.2 s for ResNet50. The loader has already checked the weights' declared
    size (:func:`optlib.inputs.limits.check_model`), so the copy is bounded like the model itself. Called once, by
    :func:`keras` (cached), when tf_keras is first imported.
    """
    import io

    from tf_keras.src.saving import saving_lib

    class WholeMemberH5IOStore(saving_lib.H5IOStore):
        def __init__(self, root_path, archive=None, mode="r"):
            if archive is None or mode != "r":
                super().__init__(root_path, archive, mode)
                return
            import h5py

            self.root_path, self.mode, self.archive = root_path, mode, archive
            self.io_file = io.BytesIO(archive.read(root_path))
            self.h5_file = h5py.File(self.io_file, mode="r")

    saving_lib.H5IOStore = WholeMemberH5IOStore


@functools.cache
def tfmot():
    """Return ``tensorflow_model_optimization``, its code called as it is written, not rewritten by AutoGraph
    (:func:`_call_the_toolkit_unconverted`)."""
    keras()
    import tensorflow_model_optimization

    _call_the_toolkit_unconverted()
    return tensorflow_model_optimization


TOOLKIT = "tensorflow_model_optimization"


def _call_the_toolkit_unconverted():
    """Have AutoGraph call the toolkit's functions as they are written, as it already calls TensorFlow's and
    tf_keras's.

    A fine-tune traces the toolkit's wrappers (``QuantizeWrapper.call``, ``PruneLowMagnitude.call``, their
    quantizers and masks), and AutoGraph first rewrote each of them into new Python: about 30 functions, 1-1.5 s
    of a process's first QAT or pruning, 2.5 s over every training scheme. The toolkit writes its graph-mode
    branches with ``tf.cond`` and ``smart_cond`` itself (it ran on TensorFlow 1's graphs), so the traced graphs
    are the same: each training scheme of the default sweep gave the same ``.tflite`` bytes either way, and
    ``tests/unit/test_fine_tuning.py`` compares the operators, tensors and buffers of prune_cluster_qat's. The
    rule is the one AutoGraph's own tests add in front of its ``config.CONVERSION_RULES``. Called once, by
    :func:`tfmot` (cached), which imports the toolkit.
    """
    from tensorflow.python.autograph.core import config

    config.CONVERSION_RULES = (config.DoNotConvert(TOOLKIT), *config.CONVERSION_RULES)


def set_seed(seed):
    """Seed Python, NumPy and TensorFlow so that a run can be repeated."""
    keras().utils.set_random_seed(int(seed))
