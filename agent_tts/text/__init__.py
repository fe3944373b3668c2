"""Text handling: incremental segmentation now; normalisation and G2P with the frontend issue."""
