"""The service's contract with its clients: every request and response model of the API.

Both `api/` (the HTTP edge) and `jobs/` (the work behind it) import these models, so neither
depends on the other; typed report models belong here too.
"""
