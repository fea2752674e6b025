"""Ops console.

The ops console: one page that shows the whole stack to the operators who run it.
"""
