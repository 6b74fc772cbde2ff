"""marketplace (seed 000, Amazon Ops Dashboard): SP-API orders and FBA inventory, synced on a
schedule into PostgreSQL, Slack alerts of new orders, and a dashboard API.

Functions (see ``functions/catalog.py``): ``marketplace-orders-sync`` (``orders_sync``),
``marketplace-inventory-sync`` (``inventory_sync``), ``marketplace-api`` (``api``).
Domain beside them: ``domain`` (parsing), ``spapi`` (LWA + SP-API clients), ``pacing``
(deadlines, shared quotas), ``slack`` (outbox delivery), ``repository`` (SQL), ``sync``
(the runs). Development tooling: ``simulator``, ``demo``, ``cli``. Guide: docs/marketplace.md.
"""
