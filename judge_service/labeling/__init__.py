"""People in the loop: blind A/B labelling tasks, spreadsheet round trip, the judge held against raters.

`blind`, `sampling` and `sheet` are pure (no web, no database); `tasks` stores tasks and submissions,
`results` turns them into the human report.
"""
