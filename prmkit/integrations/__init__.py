"""Adapters that put prmkit inside other RL engines (verl); none imports its engine at module level."""
