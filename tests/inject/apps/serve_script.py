"""Run as a plain script: ``python tests/inject/apps/serve_script.py`` (its dir is sys.path[0])."""

from starlette_app import main  # type: ignore[import-not-found]

main()
