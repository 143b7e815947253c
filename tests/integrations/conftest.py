"""test_verl.py needs verl, which pins transformers below the main environment's: it runs in its own
virtualenv (.venv-verl, `make test-verl`); the main suite runs it there through test_verl_env.py."""
import importlib.util

collect_ignore = [] if importlib.util.find_spec("verl") else ["test_verl.py"]
