"""Progress bars: one place decides how long loops report progress (tqdm, quiet under PRMKIT_QUIET=1)."""

from __future__ import annotations

import os
from typing import Iterable


def progress(iterable: Iterable | None = None, desc: str = "", **kwargs):
    from tqdm.auto import tqdm

    disable = os.environ.get("PRMKIT_QUIET") == "1"
    return tqdm(iterable, desc=desc, disable=disable, dynamic_ncols=True, **kwargs)
