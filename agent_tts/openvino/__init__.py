"""The OpenVINO backend: a voice's ONNX export with its convolution- and matrix-heavy graphs on OpenVINO."""
