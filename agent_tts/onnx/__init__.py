"""The ONNX Runtime backend: export a voice to ONNX graphs and run them (see docs/onnx.md)."""
