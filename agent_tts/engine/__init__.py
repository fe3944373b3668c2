"""The inference engine: decoding loops and (later) streaming synthesis."""
