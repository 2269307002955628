"""Pages of upload records for the admin's view: search, sort and paging done by the database, so that thousands of
uploads cost one small query per page, not a list of them all."""

from __future__ import annotations

from dataclasses import dataclass

from pyfiledrop.domain.model import Upload
from pyfiledrop.meta import rows as records
from pyfiledrop.meta.sql import Database, Dialect, Tx, like, marks, nocase

SORTS = {"created": "created_at", "name": "filename", "size": "size", "state": "state"}
MAX_LIMIT = 500
_SEARCH = (
    "(filename LIKE ? ESCAPE '\\' OR id = ? OR owner = ? OR owner IN "
    "(SELECT 'drop-' || id FROM drops WHERE label LIKE ? ESCAPE '\\'))"
)


@dataclass(frozen=True, slots=True)
class PageQuery:
    owner: str | None = None  # None: everyone's (the admin)
    search: str = ""  # in the name, the id, the owner, or the drop link's label
    sort: str = "created"
    descending: bool = True
    limit: int = 100
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Page:
    uploads: list[Upload]
    total: int
    labels: dict[str, str]  # drop owner ("drop-<id>") → the link's label, for the uploads on this page


async def page(db: Database, query: PageQuery) -> Page:
    clauses = ["state != 'terminated'", "concat != 'partial'"]
    params: list[object] = []
    if query.owner is not None:
        clauses.append("owner = ?")
        params.append(query.owner)
    if query.search:
        matches = like(db.dialect)
        pattern = "%" + query.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        clauses.append(_SEARCH.replace("LIKE", matches))
        params += [pattern, query.search, query.search, pattern]
    where = " AND ".join(clauses)
    column = SORTS.get(query.sort, "created_at")
    column = nocase(db.dialect, column) if column == "filename" else column
    nulls = ""
    if db.dialect is Dialect.POSTGRESQL:  # where SQLite puts NULL (an unknown size): first going up, last going down
        nulls = " NULLS LAST" if query.descending else " NULLS FIRST"
    order = f"{column} {'DESC' if query.descending else 'ASC'}{nulls}, id"

    def _select(connection: Tx) -> Page:
        counted = connection.fetchone(f"SELECT COUNT(*) FROM uploads WHERE {where}", params)  # noqa: S608
        total = counted[0] if counted else 0
        rows = connection.fetchall(
            f"{records.SELECT} WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?",
            [*params, query.limit, query.offset],
        )
        uploads = [records.from_row(row) for row in rows]
        owners = sorted({u.owner for u in uploads if u.owner.startswith("drop-")})
        labels: dict[str, str] = {}
        if owners:
            found = connection.fetchall(
                f"SELECT 'drop-' || id, label FROM drops WHERE 'drop-' || id IN ({marks(len(owners))})",  # noqa: S608
                owners,
            )
            labels = dict(found)
        return Page(uploads, int(total), labels)

    return await db.query(_select)
