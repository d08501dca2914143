"""Readers for results produced elsewhere (UnixBench text reports); see docs/import.md."""
