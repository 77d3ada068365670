"""PostgreSQL table modules: one per table, each owning that table's SQL.

A table module holds the table's explicit column list, ``from_row`` (a row
to a model) and module-level async functions that take a connection
(:data:`storage.postgres.pool.Conn`) and run ``$n``-parametrised SQL on it.
They open no transaction and acquire no connection: the stores in
:mod:`storage.postgres` do, and compose several table functions in one
transaction where a method needs it. See :mod:`storage.postgres`.
"""
