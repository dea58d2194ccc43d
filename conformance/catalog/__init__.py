"""The claim catalog: one YAML file per topic, validated on load.

A claim is data (principle 1): a stable path-like id, an English MUST statement,
the verbatim quotes it comes from, its kind, the engine facts it applies under,
and — for a documented inaccuracy — the corrected expectation.  ``model`` loads
and validates the files, ``quotes`` checks that each quote is whole sentences of
its article, and ``conditions`` evaluates ``applies`` against facts.  None of
them imports anything else from the package, so the catalog can be read and
checked on a machine with no engine at all.
"""

from .conditions import unmet_conditions
from .model import Catalog, CatalogError, Claim, catalog, load_catalog, read_yaml
from .quotes import ARTICLES_DIR, fragment_quotes, missing_quotes

# What the rest of the package and its tests import from here.
__all__ = [
    "ARTICLES_DIR",
    "Catalog",
    "CatalogError",
    "Claim",
    "catalog",
    "fragment_quotes",
    "load_catalog",
    "missing_quotes",
    "read_yaml",
    "unmet_conditions",
]
