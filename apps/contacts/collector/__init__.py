"""The collector: tracked sites send batches of events to ``POST /api/v1/collect``.

The endpoint (``intake``) does cheap checks, stores the raw batch and answers 202; a worker
(``services``) turns stored batches into Activities, idempotently, and links them to
contacts. ``parse`` validates, ``bots`` spots crawlers, ``utm`` resolves channel and
campaign, ``signing`` checks that identifiers come from the site's server, ``driver``
gives the two hottest statements a server-side-binding cursor.
"""
