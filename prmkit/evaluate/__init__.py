"""Evaluation: pure metrics (`metrics.py`: ProcessBench F1, AUROC, ECE, pass@k, Best-of-N selection and curves)."""
