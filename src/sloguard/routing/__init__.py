"""Path normalization, route templates and route globs.

One normalizer and one resolver are shared by metric labels, SLI selectors
and authorization, so the three can never disagree about which route a
request hit.
"""

from sloguard.routing._glob import GlobSet, compile_glob, glob_matches
from sloguard.routing._normalize import PathError, TrailingSlash, normalize_path
from sloguard.routing._templates import (
    MAX_CACHED_PATH_LENGTH,
    UNMATCHED,
    RouteTable,
    RouteTemplate,
)

__all__ = [
    "MAX_CACHED_PATH_LENGTH",
    "UNMATCHED",
    "GlobSet",
    "PathError",
    "RouteTable",
    "RouteTemplate",
    "TrailingSlash",
    "compile_glob",
    "glob_matches",
    "normalize_path",
]
