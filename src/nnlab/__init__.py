"""nnlab: from a short YAML file to a trained Keras model and a run folder full of evidence."""

__version__ = "0.1.0"
