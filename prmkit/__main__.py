"""`python -m prmkit …`: the same command line as the `prmkit` script, for an interpreter with no
console script on its PATH (a bench run from a snapshot, a venv not activated)."""

from prmkit.cli import main

if __name__ == "__main__":
    main()
