"""Stress scripts (heavier variants of the reliability tests) and their shared checks."""
