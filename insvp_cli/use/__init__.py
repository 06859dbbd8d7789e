"""Using a trained model: evaluate it on a split, classify new images (``insvp predict``), export it (ONNX,
``torch.export``), and convert the authors' released model into a checkpoint of ours.
"""
