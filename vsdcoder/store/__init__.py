"""The run directory: manifest, SQLite call log, codes.jsonl/csv."""
