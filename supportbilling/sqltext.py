"""SQL text made of fixed fragments of the project's own modules."""

from psycopg import sql


def sql_composed(template: str, **parts: str) -> str:
    """``template`` with its ``{name}`` parts filled in: fixed SQL fragments of the calling
    module, never input (psycopg's composition, so that values still go as parameters)."""
    return (
        sql.SQL(template)
        .format(**{name: sql.SQL(part) for name, part in parts.items()})
        .as_string()
    )
