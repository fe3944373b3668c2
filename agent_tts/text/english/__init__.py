"""English: normalisation, dictionary and out-of-vocabulary G2P."""
