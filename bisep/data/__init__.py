"""Data: manifests, caption parsing, sampling, dataset preparation and the built-in corpus."""
