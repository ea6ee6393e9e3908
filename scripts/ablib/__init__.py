"""The A/B comparison of allocators behind scripts/ab and kmalloc-ab (see docs/ab.md)."""
