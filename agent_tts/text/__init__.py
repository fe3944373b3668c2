"""Text handling: incremental segmentation, normalisation, language splitting and G2P."""
