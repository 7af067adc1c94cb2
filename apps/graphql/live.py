"""Live queries and streaming subscriptions: run again when their tables change, sent when changed.

One `Hub` per server process (per event loop) holds every subscription of the process's WebSocket
connections (apps.graphql.api.consumers):

- **Multiplexed.** Subscriptions are grouped by everything their answer depends on: the
  organization, the permission shape (role, key kind, scopes), the row scope (the actor, only when
  a table it reads is filtered to the actor's own rows), the document, the variables and the
  operation name. A group runs once and its answer fans out to every subscription in it, so 500
  clients watching the same thing cost one query per change. Streams group by their cursor too.
- **Driven by the outbox.** apps.graphql.notify hands the hub each committed transaction's changes
  (organization -> model labels), from this process directly and from the others through the
  channel layer. A group re-runs when a change of its organization touches a table it reads (its
  root table, the tables its selection reaches, and those its `where` may reach); changes arriving
  within `GRAPHQL_SUBSCRIPTIONS_BATCH_DELAY` are coalesced into one run. A live query's answer is
  sent only when it differs from the last one that subscription was sent.
- **Nothing lost.** A notification may be missed (a write from a process without a channel layer,
  a dropped Redis message): every `GRAPHQL_SUBSCRIPTIONS_POLL_SECONDS` the hub reads the ids of the
  events committed in the last `GRAPHQL_SUBSCRIPTIONS_POLL_LOOKBACK` seconds for the organizations
  it serves (one indexed query), and treats any it was not notified of as a change of that
  event's table.
- **Credentials re-checked.** Every `GRAPHQL_WS_AUTH_RECHECK_SECONDS`, and at once when a change
  touches keys, tokens, memberships or organizations, each distinct credential of the process's
  connections is authenticated again (apps.graphql.sessions); a refused or changed one ends its
  connections' subscriptions with the error, and a run waits for a pending re-check before it
  sends anything.

Queries run on a small thread pool of the hub's own (`GRAPHQL_SUBSCRIPTIONS_THREADS`), never on
the event loop.
"""

import asyncio
import logging
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

import orjson
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone
from graphql import (
    GraphQLError,
    OperationType,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    execute,
    get_named_type,
    get_operation_ast,
    parse,
    validate,
    visit,
)
from graphql.execution.values import get_argument_values, get_variable_values

from apps.core import policy
from apps.core.errors import APIError
from apps.events.models import Event

from . import limits, notify, sessions
from .execution import INTERNAL, PARSE_FAILED, VALIDATION_FAILED, Context, failure, format_error
from .schema import get_schema
from .subscriptions import STREAM_CURSOR, STREAM_NEXT, STREAM_SUFFIX
from .tables import all_tables

logger = logging.getLogger("stateset.graphql.live")

CREDENTIAL_LABELS = notify.CREDENTIAL_LABELS
# The rows every recorded change writes beside its own: its audit entry, its event, its deliveries.
OUTBOX_LABELS = frozenset({"accounts.AuditLog", notify.EVENT_LABEL, notify.DELIVERY_LABEL})
# Events read per poll at most; past that every table of those organizations counts as changed.
POLL_ROWS = 5000


def option(name, default):
    return getattr(settings, name, default)


# Preparing an operation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """A valid subscription operation for one actor's schema."""

    schema: object
    document: object
    query: str
    variables: dict | None
    operation_name: str | None
    root_key: str  # the response key of its one root field
    table: object
    stream: bool
    batch_size: int | None
    labels: frozenset


def _errors(errors, code):
    return [format_error(error, code) for error in errors]


def prepare(actor, query, variables, operation_name):
    """("single", None) for a query or mutation (run it with execute_operation), ("subscription",
    Prepared), or ("errors", [formatted errors]) for a document that cannot run, checked as
    apps.graphql.execution checks one sent over HTTP (size, parse, the actor's schema, limits)."""
    if not isinstance(query, str) or not query.strip():
        return "errors", failure("Give the GraphQL document as a string in `query`.", PARSE_FAILED)["errors"]
    if variables is not None and not isinstance(variables, dict):
        return "errors", failure("`variables` must be a JSON object.", VALIDATION_FAILED)["errors"]
    if operation_name is not None and not isinstance(operation_name, str):
        return "errors", failure("`operationName` must be a string.", VALIDATION_FAILED)["errors"]
    too_large = limits.check_size(query)
    if too_large is not None:
        return "errors", _errors([too_large], PARSE_FAILED)
    try:
        document = parse(query, max_tokens=limits.MAX_TOKENS)
    except GraphQLError as exc:
        if "tokens. Parsing aborted" in exc.message:
            exc.extensions = {"code": limits.TOO_LARGE}
        return "errors", _errors([exc], PARSE_FAILED)
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        message = "Name the operation to run in `operationName` (the document has several, or not that one)."
        return "errors", failure(message, VALIDATION_FAILED)["errors"]
    if operation.operation != OperationType.SUBSCRIPTION:
        return "single", None
    schema = get_schema(actor)
    errors = validate(schema, document)
    anonymous = actor is None or (actor.role == "anonymous" and not actor.api_key_kind)
    if errors and anonymous and not validate(get_schema(full=True), document):
        return "errors", failure("No API key provided.", "MISSING_API_KEY")["errors"]
    if not errors:
        errors = limits.check_document(document)
    if errors:
        return "errors", _errors(errors, VALIDATION_FAILED)
    coerced = get_variable_values(schema, operation.variable_definitions or (), variables or {})
    if isinstance(coerced, list):
        return "errors", _errors(coerced, VALIDATION_FAILED)
    root = limits._Measure(document).root_fields(operation.selection_set)[0][0]
    tables = all_tables()
    table = _root_table(root.name.value, tables)
    stream = table is not None and root.name.value == f"{table.name}{STREAM_SUFFIX}"
    batch_size = None
    if stream:
        field_def = schema.subscription_type.fields[root.name.value]
        batch_size = get_argument_values(field_def, root, coerced).get("batch_size")
    return "subscription", Prepared(
        schema=schema,
        document=document,
        query=query,
        variables=variables,
        operation_name=operation_name,
        root_key=root.alias.value if root.alias else root.name.value,
        table=table,
        stream=stream,
        batch_size=batch_size,
        labels=touched_labels(schema, document, tables),
    )


def _root_table(field_name, tables):
    for suffix in ("", "_by_pk", "_aggregate", STREAM_SUFFIX):
        if suffix and not field_name.endswith(suffix):
            continue
        table = tables.get(field_name[: len(field_name) - len(suffix)] if suffix else field_name)
        if table is not None:
            return table
    return None


def _reachable(table, tables, found):
    """The labels `where` may reach from `table`, through relationships at any depth."""
    for relationship in table.relationships.values():
        target = tables[relationship.target]
        if target.label not in found:
            found.add(target.label)
            _reachable(target, tables, found)


def touched_labels(schema, document, tables):
    """The model labels whose changes may change this document's answer: every table a field of
    it reads, and what a `where` on a field may reach through relationships."""
    by_type = {table.name: table for table in tables.values()}
    roots = {schema.query_type, schema.subscription_type}
    labels = set()
    type_info = TypeInfo(schema)

    class Collect(Visitor):
        def enter_field(self, node, *_args):
            field_def = type_info.get_field_def()
            if field_def is None:
                return
            if type_info.get_parent_type() in roots:
                table = _root_table(node.name.value, tables)
            else:
                table = by_type.get(get_named_type(field_def.type).name)
            if table is None:
                return
            labels.add(table.label)
            if any(argument.name.value == "where" for argument in node.arguments or ()):
                _reachable(table, tables, labels)

    visit(document, TypeInfoVisitor(type_info, Collect()))
    return frozenset(labels)


def _row_scope(actor, labels):
    """The actor when a table the operation reads shows the actor only its own rows (so only
    that actor's subscriptions may share its answers), else None."""
    for label in labels:
        try:
            rule = policy.authorize(actor, label, "read")
        except Exception:  # noqa: BLE001 - a table the role cannot read is refused when run
            continue
        if rule.rows != "all":
            return actor.actor_id
    return None


def group_key(actor, prepared):
    organization = actor.organization.pk if actor is not None else None
    shape = None if actor is None else (actor.role, actor.api_key_kind, tuple(sorted(actor.scopes or ())))
    variables = orjson.dumps(prepared.variables or {}, option=orjson.OPT_SORT_KEYS)
    scope = _row_scope(actor, prepared.labels) if actor is not None else None
    return (organization, shape, scope, prepared.query, variables, prepared.operation_name)


# Running a group ---------------------------------------------------------------------------------


def run_prepared(prepared, actor, cursor=None):
    """(payload as JSON text, the stream's next cursor or None, rows in a stream's batch or None)."""
    context = Context(actor=actor, tables=all_tables())
    if prepared.stream and cursor is not None:
        context.cache[STREAM_CURSOR] = cursor
    result = execute(
        prepared.schema,
        prepared.document,
        variable_values=prepared.variables,
        operation_name=prepared.operation_name,
        context_value=context,
    )
    response = {"data": result.data}
    if result.errors:
        response["errors"] = [
            format_error(error, INTERNAL if error.path else VALIDATION_FAILED) for error in result.errors
        ]
    rows = None
    if prepared.stream and not result.errors and isinstance(result.data, dict):
        rows = len(result.data.get(prepared.root_key) or ())
    return orjson.dumps(response).decode(), context.cache.get(STREAM_NEXT), rows


def _run_jobs(jobs):
    """Runs groups (on a pool thread): [(group, version, payload, next cursor, rows)]."""
    close_old_connections()
    done = []
    try:
        for group, version, cursor in jobs:
            try:
                payload, next_cursor, rows = run_prepared(group.prepared, group.actor, cursor)
            except Exception:  # noqa: BLE001 - one broken group must not stop the others
                logger.exception("A live query failed")
                payload = orjson.dumps(failure("An internal error occurred.", INTERNAL)).decode()
                next_cursor, rows = None, None
            done.append((group, version, payload, next_cursor, rows, cursor))
    finally:
        close_old_connections()
    return done


def recent_events(organization_ids, lookback):
    """(id, organization id, object type) of the organizations' events of the last `lookback` s."""
    since = timezone.now() - timedelta(seconds=lookback)
    rows = list(
        Event.objects.filter(organization_id__in=organization_ids, created_at__gte=since).values_list(
            "id", "organization_id", "object_type"
        )[:POLL_ROWS]
    )
    return rows


def _labels_of_object_type(object_type):
    labels = {table.label for table in all_tables().values() if table.model._meta.model_name == object_type}
    return labels or {table.label for table in all_tables().values()}


# The hub -------------------------------------------------------------------------------------------


@dataclass(eq=False)
class Subscription:
    """One client operation: `connection` receives its results (`deliver`) and its end."""

    connection: object
    op_id: str
    group: object = None
    last: str | None = None  # the payload it was sent last
    sent_first: bool = False


@dataclass(eq=False)
class Group:
    key: tuple
    organization_id: str
    actor: object  # any of its subscriptions' actors: they read the same rows
    prepared: Prepared
    subscriptions: set = field(default_factory=set)
    version: int = 0  # bumped by each change: a run started before one may not be cached
    result: str | None = None  # a live query's last answer, while no change has come since
    cursor: tuple | None = None  # a stream's position: (cursor value, primary key) of its last row


class Hub:
    def __init__(self, loop):
        self.loop = loop
        self.groups = {}
        self.by_organization = defaultdict(set)  # organization id -> groups
        self.connections = set()
        self.watched = defaultdict(int)  # organization id -> connections acting for it (or its sandbox)
        self.dirty = set()  # group keys to run
        self.pass_task = None
        self.recheck_task = None
        self.recheck_again = False
        self.notified_events = {}  # event id -> when a notification named it
        self.seen_events = {}  # event id -> when the poll first saw it
        self.executor = ThreadPoolExecutor(
            max_workers=option("GRAPHQL_SUBSCRIPTIONS_THREADS", 4), thread_name_prefix="graphql-live"
        )
        self.channel = None
        self.tasks = []
        self.receiver = None

    # Life ------------------------------------------------------------------------------------

    def start(self):
        self.receiver = notify.add_receiver(self.loop, self.on_changes)
        self.tasks = [
            self.loop.create_task(self._poll_forever()),
            self.loop.create_task(self._recheck_forever()),
        ]
        if notify.publishing_enabled():
            self.tasks.append(self.loop.create_task(self._listen_forever()))

    def stop(self):
        """Stop listening and polling (the server's loop is ending; tests)."""
        notify.remove_receiver(self.receiver)
        for task in (*self.tasks, self.pass_task, self.recheck_task):
            if task is not None:
                task.cancel()
        self.executor.shutdown(wait=False, cancel_futures=True)
        if _hubs.get(self.loop) is self:
            del _hubs[self.loop]

    async def run_sync(self, function, *args):
        """`function(*args)` on the hub's threads (database work never runs on the event loop)."""

        def job():
            close_old_connections()
            try:
                return function(*args)
            finally:
                close_old_connections()

        return await self.loop.run_in_executor(self.executor, job)

    # Connections -----------------------------------------------------------------------------

    def _organizations_of(self, actor):
        if actor is None:
            return set()
        organization = actor.organization
        live = getattr(organization, "live", None) or organization
        return {organization.pk, live.pk}

    def connection_opened(self, connection):
        self.connections.add(connection)
        for organization_id in self._organizations_of(connection.actor):
            self.watched[organization_id] += 1
            if self.watched[organization_id] == 1 and self.channel is not None:
                self.loop.create_task(self._join(organization_id))

    def connection_closed(self, connection):
        if connection not in self.connections:
            return
        self.connections.discard(connection)
        for subscription in list(connection.subscriptions.values()):
            self.unsubscribe(subscription)
        for organization_id in self._organizations_of(connection.actor):
            self.watched[organization_id] -= 1
            if self.watched[organization_id] <= 0:
                del self.watched[organization_id]
                if self.channel is not None:
                    self.loop.create_task(self._leave(organization_id))

    # Subscriptions ---------------------------------------------------------------------------

    def subscribe(self, connection, op_id, actor, prepared):
        subscription = Subscription(connection, op_id)
        key = group_key(actor, prepared)
        if prepared.stream:
            key = (*key, None)  # streams start at their initial value
        group = self.groups.get(key)
        if group is None:
            organization_id = key[0]
            group = Group(key, organization_id, actor, prepared)
            self.groups[key] = group
            self.by_organization[organization_id].add(group)
        group.subscriptions.add(subscription)
        subscription.group = group
        if group.result is not None and not prepared.stream:
            # The group's answer is current (no change has come since it ran): send it now.
            subscription.last = group.result
            subscription.sent_first = True
            connection.deliver(subscription, group.result)
        else:
            self.dirty.add(key)
            self._request_pass(0)
        return subscription

    def unsubscribe(self, subscription):
        group = subscription.group
        if group is None:
            return
        subscription.group = None
        group.subscriptions.discard(subscription)
        if not group.subscriptions and self.groups.get(group.key) is group:
            del self.groups[group.key]
            groups = self.by_organization.get(group.organization_id)
            if groups is not None:
                groups.discard(group)
                if not groups:
                    del self.by_organization[group.organization_id]

    # Changes ---------------------------------------------------------------------------------

    def on_changes(self, changes, origin):
        """Committed changes {organization id: (labels, event ids)}: re-run what they touch."""
        now = time.monotonic()
        credentials = False
        for organization_id, (labels, events) in changes.items():
            for event_id in events:
                self.notified_events[event_id] = now
            labels = set(labels)
            if labels & CREDENTIAL_LABELS:
                credentials = True
            for group in self.by_organization.get(organization_id, ()):
                if group.prepared.labels & labels:
                    group.version += 1
                    group.result = None
                    self.dirty.add(group.key)
        if credentials:
            self.recheck_soon()
        if self.dirty:
            self._request_pass(option("GRAPHQL_SUBSCRIPTIONS_BATCH_DELAY", 0.05))

    def _request_pass(self, delay):
        if self.pass_task is None or self.pass_task.done():
            self.pass_task = self.loop.create_task(self._passes(delay))

    async def _passes(self, delay):
        if delay:
            await asyncio.sleep(delay)
        while self.dirty:
            keys, self.dirty = self.dirty, set()
            try:
                await self._pass(keys)
            except Exception:  # noqa: BLE001 - the hub must outlive one bad pass
                logger.exception("A live query pass failed")
            await asyncio.sleep(0)

    async def _pass(self, keys):
        if self.recheck_task is not None and not self.recheck_task.done():
            # A credential may just have been revoked: no answer goes out before it is checked.
            await asyncio.shield(self.recheck_task)
        jobs = [(group, group.version, group.cursor) for key in keys if (group := self.groups.get(key)) is not None]
        if not jobs:
            return
        workers = max(1, min(option("GRAPHQL_SUBSCRIPTIONS_THREADS", 4), len(jobs)))
        chunks = [jobs[index::workers] for index in range(workers)]
        runs = [self.loop.run_in_executor(self.executor, _run_jobs, chunk) for chunk in chunks]
        results = await asyncio.gather(*runs)
        for chunk in results:
            for group, version, payload, next_cursor, rows, cursor in chunk:
                if group.prepared.stream:
                    self._stream_out(group, payload, next_cursor, rows, cursor)
                else:
                    self._live_out(group, version, payload)

    def _live_out(self, group, version, payload):
        if group.version == version:
            group.result = payload
        for subscription in list(group.subscriptions):
            if subscription.last != payload:
                subscription.last = payload
                subscription.sent_first = True
                subscription.connection.deliver(subscription, payload)

    def _stream_out(self, group, payload, next_cursor, rows, cursor):
        if group.cursor != cursor:
            return  # moved meanwhile (merged into another group): that group sends
        if rows:
            for subscription in list(group.subscriptions):
                subscription.last = payload
                subscription.sent_first = True
                subscription.connection.deliver(subscription, payload)
            self._move_stream(group, next_cursor)
            if rows >= (group.prepared.batch_size or 0):
                self.dirty.add(group.key)  # a full batch: more rows may be waiting
                self._request_pass(0)
            return
        for subscription in list(group.subscriptions):
            # No new rows: only a new subscription hears so (its first answer), or an error once.
            if not subscription.sent_first or (rows is None and subscription.last != payload):
                subscription.last = payload
                subscription.sent_first = True
                subscription.connection.deliver(subscription, payload)

    def _move_stream(self, group, cursor):
        """Re-key a stream at its new position, joining a group already there (Hasura rebuilds
        its cohorts the same way, so a new subscriber never shares an old one's position)."""
        if self.groups.get(group.key) is group:
            del self.groups[group.key]
        group.cursor = cursor
        group.key = (*group.key[:-1], cursor)
        existing = self.groups.get(group.key)
        if existing is not None and existing is not group:
            for subscription in group.subscriptions:
                subscription.group = existing
            existing.subscriptions |= group.subscriptions
            self.by_organization[group.organization_id].discard(group)
            return
        self.groups[group.key] = group

    # The safety net: the outbox --------------------------------------------------------------

    async def _poll_forever(self):
        interval = option("GRAPHQL_SUBSCRIPTIONS_POLL_SECONDS", 1.0)
        lookback = option("GRAPHQL_SUBSCRIPTIONS_POLL_LOOKBACK", 10.0)
        while True:
            await asyncio.sleep(interval)
            try:
                await self._poll(lookback)
            except Exception:  # noqa: BLE001 - the database may be away for a moment
                logger.warning("The subscriptions' outbox poll failed", exc_info=True)

    async def _poll(self, lookback):
        organizations = [organization_id for organization_id, groups in self.by_organization.items() if groups]
        if not organizations:
            return
        rows = await self.run_sync(recent_events, organizations, lookback)
        now = time.monotonic()
        missed = defaultdict(set)
        for event_id, organization_id, object_type in rows:
            if event_id in self.seen_events:
                continue
            self.seen_events[event_id] = now
            if event_id not in self.notified_events:
                missed[organization_id] |= _labels_of_object_type(object_type)
        if len(rows) >= POLL_ROWS:
            every = {table.label for table in all_tables().values()}
            for organization_id in organizations:
                missed[organization_id] |= every
        horizon = now - 3 * lookback
        for seen in (self.seen_events, self.notified_events):
            for event_id in [event_id for event_id, when in seen.items() if when < horizon]:
                del seen[event_id]
        if missed:
            logger.info("Changes found by the outbox poll, not notified: %s", dict(missed))
            self.on_changes({org: (labels | OUTBOX_LABELS, set()) for org, labels in missed.items()}, "poll")

    # Other processes' changes: the channel layer ---------------------------------------------

    async def _listen_forever(self):
        layer = get_channel_layer()
        while True:
            try:
                self.channel = await layer.new_channel("gqlsubs.")
                for organization_id in list(self.watched):
                    await self._join(organization_id)
                refreshed = time.monotonic()
                while True:
                    message = await layer.receive(self.channel)
                    if message.get("origin") != notify.PROCESS_ID and message.get("type") == notify.MESSAGE_TYPE:
                        labels, events = set(message.get("labels") or ()), set(message.get("events") or ())
                        self.on_changes({message["organization"]: (labels, events)}, message.get("origin"))
                    if time.monotonic() - refreshed > option("GRAPHQL_SUBSCRIPTIONS_GROUP_REFRESH", 600):
                        # Group memberships expire in the layer (a day by default): renew them.
                        for organization_id in list(self.watched):
                            await self._join(organization_id)
                        refreshed = time.monotonic()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - Redis away: the outbox poll covers, then rejoin
                logger.warning("The subscriptions' channel layer listener failed; retrying", exc_info=True)
                self.channel = None
                await asyncio.sleep(1)

    async def _join(self, organization_id):
        if self.channel is None:
            return
        try:
            await get_channel_layer().group_add(notify.group_name(organization_id), self.channel)
        except Exception:  # noqa: BLE001 - rejoined by the listener when Redis is back
            logger.warning("Could not join the change group of %s", organization_id, exc_info=True)

    async def _leave(self, organization_id):
        if self.channel is None or organization_id in self.watched:
            return
        try:
            await get_channel_layer().group_discard(notify.group_name(organization_id), self.channel)
        except Exception:  # noqa: BLE001 - a stale membership only brings messages we ignore
            logger.debug("Could not leave the change group of %s", organization_id, exc_info=True)

    # Credentials ------------------------------------------------------------------------------

    async def _recheck_forever(self):
        while True:
            await asyncio.sleep(option("GRAPHQL_WS_AUTH_RECHECK_SECONDS", 3.0))
            self.recheck_soon()

    def recheck_soon(self):
        if self.recheck_task is not None and not self.recheck_task.done():
            self.recheck_again = True
            return
        self.recheck_task = self.loop.create_task(self._recheck())

    async def _recheck(self):
        while True:
            self.recheck_again = False
            by_signature = defaultdict(list)
            for connection in self.connections:
                by_signature[sessions.signature(connection.meta)].append(connection)
            if by_signature:
                checks = {signature: connections[0] for signature, connections in by_signature.items()}
                try:
                    outcomes = await self.run_sync(_authenticate_all, checks)
                except Exception:  # noqa: BLE001 - the database away: keep what we know, retry later
                    logger.warning("Re-checking WebSocket credentials failed", exc_info=True)
                    outcomes = {}
                for signature, outcome in outcomes.items():
                    for connection in by_signature[signature]:
                        if connection not in self.connections:
                            continue
                        if isinstance(outcome, Exception):
                            connection.credential_refused(outcome)
                        elif sessions.identity(outcome) != sessions.identity(connection.actor):
                            connection.credential_refused(None)
            if not self.recheck_again:
                return


def _authenticate_all(checks):
    outcomes = {}
    for signature, connection in checks.items():
        try:
            outcomes[signature] = sessions.authenticate(connection.meta, connection.path, connection.request_id)
        except APIError as exc:  # refused: the answer
            outcomes[signature] = exc
        except Exception:  # noqa: BLE001 - the database away is no refusal: check again next time
            logger.warning("Could not re-check a WebSocket credential", exc_info=True)
    return outcomes


_hubs = {}


def get_hub():
    """The hub of the running event loop (one per server process), started on first use."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = Hub(loop)
        hub.start()
    return hub
