"""genolm: genomic language models and classifiers for promoters and insertion sequences."""

__version__ = "0.1.0"
