"""(filled in by this issue)"""
