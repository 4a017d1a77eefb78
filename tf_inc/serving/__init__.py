"""TF-Serving export: classifiers, generator, encoder and the whole INC pipeline as SavedModels.

``python -m tf_inc.serving --out exported`` (see :mod:`tf_inc.serving.export`).
"""
