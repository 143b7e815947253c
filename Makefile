# Two entry points (see README): `make demo` runs the gym pipeline, `make test` the test suite.
# Each creates .venv and installs prmkit (torch pinned to 2.13.0, CPU build) on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.prmkit-installed

.PHONY: demo test bench install clean install-verl test-verl

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/prmkit demo --out runs/demo

# pytest exits 5 when it collects no test: say so and exit 0 (nothing failed)
test: $(STAMP)
	@$(BIN)/python -m pytest tests; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests (exit 5): nothing to run"; exit 0; fi; exit $$rc

# verl pins transformers below the main environment's, so its integration test has its own venv,
# .venv-verl, layered on .venv: a .pth file adds .venv's site-packages *after* its own, so torch and the
# rest come from .venv and only what verl needs at other versions (verl, transformers<5.11 and the
# kernels release that transformers supports, tokenizers, huggingface-hub...) is installed into it.
# It takes well under a minute from a fresh clone; the stamp keeps it until pyproject.toml changes.
VERL_VENV := .venv-verl
VERL_STAMP := $(VERL_VENV)/.prmkit-verl-installed
MAIN_SITE = $(shell $(BIN)/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")

$(VERL_STAMP): pyproject.toml $(STAMP)
	rm -rf $(VERL_VENV) && $(PYTHON) -m venv $(VERL_VENV)
	echo "import site; site.addsitedir('$(MAIN_SITE)')" > \
		"$$($(VERL_VENV)/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/zz_prmkit_main_venv.pth"
	$(VERL_VENV)/bin/python -m pip install -q ".[verl]" "transformers[kernels]<5.11"
	$(VERL_VENV)/bin/python -m pip check
	touch $(VERL_STAMP)

install-verl: $(VERL_STAMP)

test-verl: $(VERL_STAMP)
	PYTHONPATH=$(CURDIR) OMP_NUM_THREADS=1 $(VERL_VENV)/bin/python -m pytest -o addopts= -q -p no:cacheprovider \
		tests/integrations/test_verl.py

# every benchmark writes bench/results/<name>.json; the README's results table is rebuilt from them
# (search settings are chosen on long_dev by search_tau.py before search.py reads them)
BENCHES_BEFORE := sampling gym_stats labeling scoring reward_models
BENCHES_AFTER := mcts_verifier_quality search mcts_diagnose mcts_verifiers prm_kv_cache rl
bench: $(STAMP)
	for b in $(BENCHES_BEFORE); do PRMKIT_QUIET=1 $(BIN)/python bench/$$b.py || exit 1; done
	PRMKIT_QUIET=1 $(BIN)/python bench/search_tau.py && PRMKIT_QUIET=1 $(BIN)/python bench/search_tau.py --what mcts
	# MCTS guided by the stronger verifier (bench/models/strong_verifier; rebuilt by bench/strong_verifier.py)
	PRMKIT_QUIET=1 $(BIN)/python bench/search_tau.py --what mcts --prm bench/models/strong_verifier --budgets 2000
	PRMKIT_QUIET=1 $(BIN)/python bench/search.py --prm bench/models/strong_verifier --parts mcts \
		--out bench/results/search_strong_verifier.json
	for b in $(BENCHES_AFTER); do PRMKIT_QUIET=1 $(BIN)/python bench/$$b.py || exit 1; done
	$(BIN)/python bench/update_readme.py

clean:
	rm -rf runs .pytest_cache
