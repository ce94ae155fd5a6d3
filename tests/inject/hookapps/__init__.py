"""Applications, servers and an installation harness for the framework-hook tests."""
