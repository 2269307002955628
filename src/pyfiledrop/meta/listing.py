"""Pages of upload records for the admin's view: search, sort and paging done by SQLite, so that thousands of
uploads cost one small query per page, not a list of them all."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from pyfiledrop.domain.model import Upload
from pyfiledrop.meta import sqlite as records
from pyfiledrop.meta.sqlite import SQLiteMetadataStore

SORTS = {"created": "created_at", "name": "filename COLLATE NOCASE", "size": "size", "state": "state"}
MAX_LIMIT = 500


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


async def page(db: SQLiteMetadataStore, query: PageQuery) -> Page:
    clauses = ["state != 'terminated'", "concat != 'partial'"]
    params: list[object] = []
    if query.owner is not None:
        clauses.append("owner = ?")
        params.append(query.owner)
    if query.search:
        like = "%" + query.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        clauses.append(
            "(filename LIKE ? ESCAPE '\\' OR id = ? OR owner = ? OR owner IN "
            "(SELECT 'drop-' || id FROM drops WHERE label LIKE ? ESCAPE '\\'))"
        )
        params += [like, query.search, query.search, like]
    where = " AND ".join(clauses)
    order = f"{SORTS.get(query.sort, 'created_at')} {'DESC' if query.descending else 'ASC'}, id"

    def _select(connection: sqlite3.Connection) -> Page:
        (total,) = connection.execute(f"SELECT COUNT(*) FROM uploads WHERE {where}", params).fetchone()  # noqa: S608
        rows = connection.execute(
            f"{records._SELECT} WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?",
            [*params, query.limit, query.offset],
        ).fetchall()
        uploads = [records._from_row(row) for row in rows]
        owners = sorted({u.owner for u in uploads if u.owner.startswith("drop-")})
        labels: dict[str, str] = {}
        if owners:
            marks = ", ".join("?" * len(owners))
            found = connection.execute(
                f"SELECT 'drop-' || id, label FROM drops WHERE 'drop-' || id IN ({marks})",  # noqa: S608
                owners,
            )
            labels = dict(found.fetchall())
        return Page(uploads, int(total), labels)

    return await db.run(_select)
