"""Tricky modules the AST rewrite must leave working: each is imported with every def traced."""
