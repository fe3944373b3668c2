"""Chinese: normalisation, G2P and tone sandhi."""
