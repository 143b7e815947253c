"""prmkit: process rewards for LLM reasoning — label, train, evaluate, search, learn."""

__version__ = "0.1.0"
