"""Step labelling: pure label rules (`rules`) and the procedures that drive rollouts to feed them."""
