"""Ribbon actions (xlwings RunPython entry points): thin wrappers over the perseat engine."""
