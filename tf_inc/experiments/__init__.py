"""Experiments: the model zoo, evaluation helpers, result files, plots and each figure's body.

Every paper figure / table has one module here named like its script
(``scripts/<name>.py`` only parses flags and calls ``tf_inc.experiments.<name>.run``).
"""
