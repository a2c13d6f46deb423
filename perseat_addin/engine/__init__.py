"""The billing rules: pure functions of a loaded workbook, no file, zip, XML, spreadsheet or network I/O."""
