"""scripts/ab: A/B memory and fragmentation comparison of allocators (see docs/ab.md)."""
