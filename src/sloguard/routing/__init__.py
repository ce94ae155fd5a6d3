"""Path normalization, route templates and route globs.

One normalizer and one resolver are shared by metric labels, SLI selectors
and authorization, so the three can never disagree about which route a
request hit.
"""

from sloguard.routing._glob import GlobSet, compile_glob, glob_matches

__all__ = ["GlobSet", "compile_glob", "glob_matches"]
