"""Language models from the community's own text: estimation, storage and beam-search decoding."""
