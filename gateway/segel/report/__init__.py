"""Oversight's outputs: box and district reports (PDF), track exports, custody bundles from the database.

`context.open_custody()` gathers what they need from the gateway database (places, the stored
calendar and its time zone, plans, the signing key); `story.box_story()` collects one box's
history; `pdf`, `district` and `exports` render it. Docs: docs/custody.md ("Reports").
"""
