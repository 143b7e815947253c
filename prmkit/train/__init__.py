"""Training: pure, shape-documented loss functions (`losses.py`) and one readable loop per model family."""
