"""Arithmetic cores without handshake: bit heaps, compressor trees, dot products, packed MACs."""
