"""The workbook file: read it (fast and safely), validate it against SPEC §3, edit its tables in place."""
