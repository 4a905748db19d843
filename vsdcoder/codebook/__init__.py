"""Codebooks: the YAML language, loading with positions, checks, compilation and REFI-QDA."""
