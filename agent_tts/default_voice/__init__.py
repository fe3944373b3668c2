"""The bundled default voice: Piper's `joe` (English VITS, ONNX) with eSpeak NG phonemes from a helper process."""
