"""Pure building blocks shared by every layer: digests, chunking, manifests, names, config."""
