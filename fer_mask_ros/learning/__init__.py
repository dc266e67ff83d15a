"""The model and its training: network, datasets, synthetic masks, training, evaluation, ONNX export."""
