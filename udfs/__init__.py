"""Excel functions (xlwings UDFs): thin wrappers over the perseat engine."""
