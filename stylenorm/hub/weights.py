"""The former single module of weight files, the store and the ``.pth`` readers, now split by
job into :mod:`.files`, :mod:`.store` and :mod:`.importers`. Kept only for modules and running
processes that still import these names from here; new code imports from those modules."""

from __future__ import annotations

from .files import (  # noqa: F401
    SUFFIX,
    WeightsMeta,
    load_state_strict,
    load_weights,
    pack_weights,
    read_meta,
    save_weights,
)
from .importers import load_pth, pickle_refusal, rename_state  # noqa: F401
from .store import (  # noqa: F401
    bundled_dir,
    installed_weights,
    resolve_weights,
    search_path,
    shadows_shipped,
    store_path,
    weights_home,
)
