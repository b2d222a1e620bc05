"""The service's contract with its clients: every request and response model of the API.

Both `api/` (the HTTP edge) and `jobs/` (the work behind it) import these models, so neither
depends on the other. `reports.py` holds every report (`WinRateReport`, ...), `resources.py` every
other reply; a Python client imports the same classes (docs/api.md).
"""
