"""Reliability of codes: agreement coefficients, confidence intervals, human baselines, reports."""
