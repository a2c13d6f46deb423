"""Live sources (SPEC §8): the services' APIs instead of exported files.

``http`` is the one HTTP layer every source uses (timeouts, retries, paging, errors in words,
secrets kept out of every message); ``credentials`` finds a source's settings in the environment
or the OS keyring; one module per service (``graph``, ...) turns its API into the same
:class:`~perseat_addin.imports.roster.ImportResult` a file import gives, so a live sync takes the
file imports' path from there on.
"""
