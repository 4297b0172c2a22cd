"""Training (``kwsd train``): the only part of kwsd that imports TensorFlow.

dataset.py finds and splits the clips, augment.py perturbs training audio,
architectures.py builds the Keras models, loop.py trains, export.py writes the
int8 model file (with kwsd metadata), report.json and plots.  Features always come
from :mod:`kwsd.features`, the same code the daemon runs.
"""
