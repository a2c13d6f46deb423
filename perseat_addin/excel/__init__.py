"""The Excel product without xlwings: what the functions compute, the template workbook, the VBA project."""
