"""The statements a connection has prepared (supportbilling.prepared)."""


def prepared_runs(connection, fragment: str) -> list[int]:
    """How many times each prepared statement of ``connection`` whose text holds ``fragment``
    has run (custom and generic plans together), in the order of their text."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans + custom_plans FROM pg_prepared_statements "
            "WHERE statement LIKE %s ORDER BY statement",
            [f"%{fragment}%"],
        )
        return [row[0] for row in cursor.fetchall()]
