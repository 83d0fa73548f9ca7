"""Rows read and written on every live action, with their SQL built once per process.

Django builds a query's SQL anew at every evaluation. For most reads that is nothing,
but a chat message (and a vote) reads its author and its room and inserts one event: at
a batch of one, building those three statements was three quarters of the database
thread's CPU per message (BENCHMARKS.md, many small rooms). Here the same rows come from
SQL built once from the models' metadata, and go through the same converters and
``Model.from_db`` as the ORM's, so a caller gets exactly what the ORM would have given it
(tests/rooms/test_rows.py compares them on both engines).

On PostgreSQL these statements go through ``cursor``, in PostgreSQL's own placeholders
(``marks``): a batch's statements have hundreds of parameters, and psycopg parses a
``%s`` statement of more than 50 anew at every execution.
"""

from __future__ import annotations

import functools
import weakref
from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.models.base import ModelState
from django.db.models.fields.related_descriptors import ForeignKeyDeferredAttribute
from django.db.models.query_utils import DeferredAttribute
from django.db.models.signals import post_init, pre_init


class ByPk:
    """``model.objects.select_related(fk).in_bulk(pks)``: every concrete field of the
    model and of the one row it points to, in one SELECT ... JOIN (without ``fk``, the
    model's row alone: ``model.objects.in_bulk(pks)``). ``where`` reads the same rows by
    another column of the model.

    ``only`` and ``related_only`` name the fields to read, as ``QuerySet.only`` does (the
    primary keys and the foreign key always come): the others are deferred, and reading
    one costs a query of its own, as with the ORM."""

    def __init__(
        self,
        model: type[models.Model],
        fk: str | None = None,
        only: tuple[str, ...] | None = None,
        related_only: tuple[str, ...] | None = None,
    ):
        self.model = model
        self.fk = model._meta.get_field(fk) if fk else None
        self.related = self.fk.related_model if fk else None
        self.own = _fields(model, only, always=(self.fk,) if fk else ())
        self.other = _fields(self.related, related_only) if fk else []
        # Per connection (one per thread): the converters are the connection's own.
        self._prepared: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def _prepare(self, connection):
        prepared = self._prepared.get(connection)
        if prepared is None:
            qn = connection.ops.quote_name
            own, other = self.own, self.other
            columns = [f"a.{qn(f.column)}" for f in own] + [f"b.{qn(f.column)}" for f in other]
            select = f"SELECT {', '.join(columns)} FROM {qn(self.model._meta.db_table)} a "
            if self.fk:
                select += (
                    f"INNER JOIN {qn(self.related._meta.db_table)} b "
                    f"ON b.{qn(self.related._meta.pk.column)} = a.{qn(self.fk.column)} "
                )
            prepared = self._prepared[connection] = (
                f"{select}WHERE a.",
                {f.attname: qn(f.column) for f in own} | {"pk": qn(self.model._meta.pk.column)},
                _converters(connection, own, self.model._meta.db_table)
                + (_converters(connection, other, self.related._meta.db_table, len(own)) if self.fk else []),
                [f.attname for f in own],
                [f.attname for f in other],
            )
        return prepared

    def get(self, pks) -> dict:
        return {obj.pk: obj for obj in self.where("pk", ids(pks))}

    def where(self, attname: str, values: list) -> list:
        """The rows whose ``attname`` (a concrete field's, or ``pk``) is one of ``values``."""
        connection = connections[DEFAULT_DB_ALIAS]
        select, columns, converters, own_names, other_names = self._prepare(connection)
        rows = []
        with cursor(connection) as c:
            for chunk in _chunks(connection, values, 1):
                c.execute(f"{select}{columns[attname]} IN ({marks(connection, len(chunk))})", chunk)
                rows += c.fetchall()
        db, n, found = connection.alias, len(own_names), []
        own_from_db, other_from_db = _from_db(self.model), _from_db(self.related) if self.fk else None
        for row in rows:
            fields = list(row)
            for i, chain, col in converters:
                value = fields[i]
                for converter in chain:
                    value = converter(value, col, connection)
                fields[i] = value
            obj = own_from_db(db, own_names, fields[:n])
            if self.fk:
                self.fk.set_cached_value(obj, other_from_db(db, other_names, fields[n:]))
            found.append(obj)
        return found


class Insert:
    """``model.objects.bulk_create(objs)`` for new rows with an auto primary key, which it
    sets on each: one INSERT ... RETURNING (PostgreSQL; SQLite >= 3.35)."""

    def __init__(self, model: type[models.Model]):
        self.model = model
        self.fields = [f for f in model._meta.concrete_fields if f is not model._meta.pk]
        self._heads: dict[str, str] = {}

    def __call__(self, objs: list) -> None:
        connection = connections[DEFAULT_DB_ALIAS]
        head = self._heads.get(connection.alias)
        qn = connection.ops.quote_name
        if head is None:
            head = self._heads[connection.alias] = (
                f"INSERT INTO {qn(self.model._meta.db_table)} ({', '.join(qn(f.column) for f in self.fields)}) VALUES "
            )
        k = len(self.fields)
        returning = f" RETURNING {qn(self.model._meta.pk.column)}"
        ids = []
        # A batch repeats values (its rows share a time, a room, a type, NULLs): each
        # distinct (field, type, value) is prepared once per call. JSON trees are not
        # hashable and are prepared each time.
        prepared: dict = {}

        def prep(i, field, value):
            if type(value) in (dict, list):
                return field.get_db_prep_save(value, connection)
            key = (i, type(value), value)
            found = prepared.get(key, prepared)
            if found is prepared:
                found = prepared[key] = field.get_db_prep_save(value, connection)
            return found

        with cursor(connection) as c:
            for chunk in _chunks(connection, objs, k):
                params = [prep(i, f, f.pre_save(obj, True)) for obj in chunk for i, f in enumerate(self.fields)]
                values = ", ".join(f"({marks(connection, k, start=n * k)})" for n in range(len(chunk)))
                c.execute(f"{head}{values}{returning}", params)
                ids += c.fetchall()
        for obj, (pk,) in zip(objs, ids, strict=True):
            obj.pk = pk
            obj._state.adding = False
            obj._state.db = connection.alias


@contextmanager
def cursor(connection):
    """``connection.cursor()``, for statements written with ``marks``. On PostgreSQL a
    psycopg ``RawCursor``: it takes PostgreSQL's own placeholders ($1, $2 …) as they are.
    psycopg's usual cursor rewrites every ``%s`` statement, and keeps the result only for
    statements of at most 50 parameters (``psycopg._queries.MAX_CACHED_STATEMENT_PARAMS``);
    a chat batch's two reads, its seq allocation and its INSERT have hundreds, and that
    rewriting, statement after statement, was a quarter of the database thread's CPU per
    message (many small rooms on PostgreSQL, BENCHMARKS.md). Wrapped as Django wraps its
    own (errors, query log), after Django's own checks of the connection."""
    with connection.cursor() as checked:
        if connection.vendor != "postgresql":
            yield checked
            return
        import psycopg
        from psycopg.pq import Format

        raw = psycopg.RawCursor(connection.connection)
        # Django gives a cursor its own time zone loader when the connection's differs.
        oid = psycopg.postgres.types["timestamptz"].oid
        loader = checked.cursor.adapters.get_loader(oid, Format.TEXT)
        if loader is not connection.connection.adapters.get_loader(oid, Format.TEXT):
            raw.adapters.register_loader("timestamptz", loader)
        with type(checked)(raw, connection) as wrapped:
            yield wrapped


def marks(connection, count: int, start: int = 0) -> str:
    """``count`` placeholders for a statement run on ``cursor``, the first being
    parameter ``start`` (from 0): ``$1, $2`` on PostgreSQL, ``%s, %s`` elsewhere."""
    return _marks(connection.vendor == "postgresql", count, start)


@functools.lru_cache(maxsize=4096)
def _marks(numbered: bool, count: int, start: int) -> str:
    if numbered:
        return ", ".join(f"${n}" for n in range(start + 1, start + count + 1))
    return ", ".join(["%s"] * count)


def ids(values) -> list[int]:
    """Integer ids to look up, sorted and once each. An id past a 64-bit integer names
    no row (and would not bind as a parameter)."""
    return sorted({pk for pk in map(int, values) if -(2**63) <= pk < 2**63})


def _from_db(model):
    """``model.from_db``, or the same instance built without ``Model.__init__`` when
    nothing can tell the difference: no ``pre_init``/``post_init`` receiver for the
    model, and every field's attribute a plain ``DeferredAttribute`` (a ``ForeignKey``'s
    only clears a cached related object, which a new instance has not). ``__init__``
    walked every field of the model for each row: chat's database thread went from 153
    to 131 µs of CPU per message without it (batches of 10, SQLite). Deferred fields stay deferred, as
    ``from_db`` leaves them: absent from the instance's ``__dict__``."""
    if pre_init.has_listeners(model) or post_init.has_listeners(model) or not _plain_fields(model):
        return model.from_db
    return functools.partial(_new, model)


@functools.cache
def _plain_fields(model) -> bool:
    return all(
        type(model.__dict__.get(f.attname)) in (DeferredAttribute, ForeignKeyDeferredAttribute)
        for f in model._meta.concrete_fields
    )


def _new(model, db, names, values):
    obj = model.__new__(model)
    obj.__dict__.update(zip(names, values, strict=True))
    state = obj._state = ModelState()
    state.adding, state.db = False, db
    return obj


def _fields(model, only, always=()) -> list:
    fields = model._meta.concrete_fields
    if only is None:
        return list(fields)
    unknown = set(only) - {f.name for f in fields} - {f.attname for f in fields}
    if unknown:
        raise ValueError(f"{model.__name__} has no field {', '.join(sorted(unknown))}")
    return [f for f in fields if f.primary_key or f in always or f.name in only or f.attname in only]


def _chunks(connection, items: list, params_each: int):
    """``items`` in statements within the backend's limit of parameters (SQLite: 999)."""
    size = max(1, (connection.features.max_query_params or len(items) * params_each) // params_each)
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _converters(connection, fields, table: str, start: int = 0) -> list:
    """The ORM's converters of each column read (the backend's, then the field's), as
    ``SQLCompiler.get_converters`` picks them; ``apply_converters`` runs them with the
    connection of the thread that reads."""
    out = []
    for i, field in enumerate(fields, start=start):
        col = field.get_col(table)
        chain = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
        if chain:
            out.append((i, chain, col))
    return out
