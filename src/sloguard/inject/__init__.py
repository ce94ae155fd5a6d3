"""Zero-code instrumentation: the `sloguard run` bootstrap, import hooks, AST rewriting, live probes."""
