"""Alembic migrations of the store's schema, run by :meth:`lictor.store.Store.migrate`.

A package only so that the revisions ship with Lictor and get type-checked; nothing
imports it. To add a revision, copy the newest file in ``versions/`` (named
``v<NNNN>_<slug>.py``: a module name cannot start with a digit), set ``revision`` and
``down_revision``, and change ``lictor.store.schema`` to match: a contract test compares
the migrated database with that metadata.
"""
