"""Files the product produces: invoices.xlsx, the accounting CSVs, PDFs, report.xlsx."""
