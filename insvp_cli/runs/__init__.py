"""The run layer: everything about a run folder and its files (the folder and its lock, the stored config,
metrics, checkpoints, the summary) and a trained model loaded back from them. Only this package opens a
run's files.
"""
