"""Reading data files into units to code."""
