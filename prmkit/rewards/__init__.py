"""Reward models behind one protocol, and the pure step-score aggregation (`aggregate.py`)."""
