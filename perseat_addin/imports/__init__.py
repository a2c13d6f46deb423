"""Vendor exports: Microsoft 365 and PSA users, saved column mappings, PSA time entries and tickets."""
