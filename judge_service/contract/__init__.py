"""The service's contract with its clients: every request and response model of the API.

Both `api/` (the HTTP edge) and `jobs/` (the work behind it) import these models, so neither
depends on the other. `reports.py` holds every report (`WinRateReport`, ...); `judging.py`,
`experiments.py`, `rubrics.py`, `overlap.py` and `schedules.py` their routes' models; `resources.py`
the other replies; `validation.py` the input rules. A Python client imports the same classes
(docs/api.md lists every route with its model).
"""
