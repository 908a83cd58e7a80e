"""The bottom layer: the registry, user errors, seeding, typed identities, quantities, progress protocols."""
