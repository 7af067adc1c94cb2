"""Change notifications for live subscriptions: which organization's tables changed, on commit.

Every write goes through apps.core.changes: `change_written` is registered there as a writer
(AppConfig.ready), so each recorded change names its organization and its model's label. Rows
written beside a change (the audit entry, the event, its deliveries) and the few written outside
one (a delivery attempt, a job's progress) are noted by `row_saved`/`row_deleted` (model signals,
for the models GraphQL serves). Nothing is sent while the transaction is open: a transaction's
changes are gathered per organization and handed over once, when it commits (a rolled-back one
sends nothing), so a burst of changes is one notification.

Handed to whom:
- every live-query hub of this process (apps.graphql.live), through its event loop;
- the other processes, through the channel layer (channels-redis, when REDIS_URL is set): one
  `group_send` per organization to the group `gqlsubs.<organization id>`, which each ASGI process
  joins for the organizations its connections act for. A REST write served by gunicorn, a Celery
  task or a management command reaches the WebSocket servers this way. The sends happen on a
  background thread of their own, so a request never waits on Redis; a message lost anyway (Redis
  down, a process exiting first) is caught by the hubs' safety net, which polls the event outbox.
With the in-memory channel layer (no Redis) there is one process, and the hubs are all there is.
"""

import asyncio
import atexit
import logging
import os
import secrets
import threading

from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from .tables import all_tables

logger = logging.getLogger("stateset.graphql.live")

GROUP_PREFIX = "gqlsubs."
MESSAGE_TYPE = "gql.changes"
# Event ids carried per message at most (they let the safety net skip what was notified; more
# only means a few re-runs the net did not need).
MAX_EVENT_IDS = 500

# Which process sent a channel-layer message: a hub ignores its own process's (it had them first).
PROCESS_ID = f"{os.getpid()}-{secrets.token_hex(6)}"


def group_name(organization_id):
    return f"{GROUP_PREFIX}{organization_id}"


# Receivers in this process ---------------------------------------------------------------------

_receivers = {}  # id -> (event loop, callback(changes, origin))
_receivers_lock = threading.Lock()


def add_receiver(loop, callback):
    """`callback({organization id: (labels, event ids)}, origin)` runs on `loop` for every
    committed change of this process. Returns a token for `remove_receiver`."""
    token = secrets.token_hex(8)
    with _receivers_lock:
        _receivers[token] = (loop, callback)
    return token


def remove_receiver(token):
    with _receivers_lock:
        _receivers.pop(token, None)


def dispatch(changes):
    """Hand committed changes ({organization id: (set of labels, set of event ids)}) to this
    process's hubs and, through the channel layer, to the other processes."""
    if not changes:
        return
    with _receivers_lock:
        receivers = list(_receivers.values())
    for loop, callback in receivers:
        try:
            loop.call_soon_threadsafe(callback, changes, PROCESS_ID)
        except RuntimeError:
            pass  # that loop is closed; its hub is gone
    if publishing_enabled():
        _publisher().publish(changes)


# Gathering a transaction's changes ---------------------------------------------------------------


class _Pending:
    """One transaction's changes, handed over by its on-commit callback."""

    def __init__(self, connection):
        self.changes = {}
        self.hooks = connection.run_on_commit  # the list the callback was appended to
        self.flushed = False

    def add(self, organization_id, label, event_id=None):
        labels, events = self.changes.setdefault(organization_id, (set(), set()))
        labels.add(label)
        if event_id is not None:
            events.add(event_id)

    def flush(self):
        self.flushed = True
        dispatch(self.changes)

    def registered_in(self, connection):
        """Whether this transaction's callback is still queued: a savepoint rollback drops the
        callbacks registered inside it, and a rollback all of them (Django replaces the list)."""
        if self.flushed:
            return False
        if connection.run_on_commit is self.hooks:
            return True
        if any(hook[1] == self.flush for hook in connection.run_on_commit):
            self.hooks = connection.run_on_commit
            return True
        return False


def touched(organization_id, label, event_id=None, using=DEFAULT_DB_ALIAS):
    """Note that rows of `label` changed for the organization; the subscriptions touching them
    are notified when the current transaction commits (at once outside a transaction)."""
    if not organization_id:
        return
    connection = connections[using]
    if not connection.in_atomic_block:
        dispatch({organization_id: ({label}, {event_id} - {None})})
        return
    pending = getattr(connection, "_graphql_live_pending", None)
    if pending is None or not pending.registered_in(connection):
        pending = _Pending(connection)
        connection._graphql_live_pending = pending
        transaction.on_commit(pending.flush, using=using, robust=True)
    pending.add(organization_id, label, event_id)


def change_written(change):
    """apps.core.changes writer: the change's own row (also when the service wrote it with
    `update()`, which sends no model signal)."""
    obj = change.obj
    organization_id = getattr(obj, "organization_id", None) or getattr(change.actor.organization, "pk", None)
    touched(organization_id, obj._meta.label)


EVENT_LABEL = "events.Event"
DELIVERY_LABEL = "events.WebhookDelivery"
# Credentials: a change to one re-checks the connections' credentials (a revoked key ends its
# subscriptions).
CREDENTIAL_LABELS = frozenset({"accounts.APIKey", "accounts.AuthToken", "accounts.Membership", "accounts.Organization"})

_watched = None


def watched():
    """The labels whose rows are watched: the GraphQL tables and the credentials."""
    global _watched
    if _watched is None:
        _watched = frozenset({table.label for table in all_tables().values()} | CREDENTIAL_LABELS)
    return _watched


def _organization_of(instance):
    if instance._meta.label == "accounts.Organization":
        return instance.pk
    return getattr(instance, "organization_id", None)


def row_saved(sender, instance, raw=False, using=DEFAULT_DB_ALIAS, **_kwargs):
    label = sender._meta.label
    if raw or label not in watched():
        return
    organization_id = _organization_of(instance)
    if label == EVENT_LABEL:
        # An event's deliveries are written with bulk_create, which sends no signal.
        touched(organization_id, DELIVERY_LABEL, using=using)
        touched(organization_id, label, event_id=instance.pk, using=using)
        return
    touched(organization_id, label, using=using)


def row_deleted(sender, instance, using=DEFAULT_DB_ALIAS, **_kwargs):
    if sender._meta.label in watched():
        touched(_organization_of(instance), sender._meta.label, using=using)


# Publishing to the other processes ---------------------------------------------------------------

_layer_checked = None


def publishing_enabled():
    """True when the channel layer reaches other processes (channels-redis)."""
    global _layer_checked
    if _layer_checked is None:
        layer = get_channel_layer()
        _layer_checked = layer is not None and not isinstance(layer, InMemoryChannelLayer)
    return _layer_checked


class _Publisher:
    """A daemon thread with an event loop of its own that sends the gathered changes through the
    channel layer; changes arriving while it sends are merged and sent next (one message per
    organization per round)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.pending = {}
        self.scheduled = False
        self.loop = None
        self.pid = os.getpid()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), name="graphql-live-publisher", daemon=True)
        self.thread.start()
        ready.wait(5)

    def _run(self, ready):
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        ready.set()
        self.loop.run_forever()

    def publish(self, changes):
        with self.lock:
            for organization_id, (labels, events) in changes.items():
                known_labels, known_events = self.pending.setdefault(organization_id, (set(), set()))
                known_labels.update(labels)
                known_events.update(events)
            if self.scheduled:
                return
            self.scheduled = True
        self.loop.call_soon_threadsafe(lambda: self.loop.create_task(self.send()))

    async def send(self):
        with self.lock:
            batch, self.pending, self.scheduled = self.pending, {}, False
        layer = get_channel_layer()
        for organization_id, (labels, events) in batch.items():
            message = {
                "type": MESSAGE_TYPE,
                "organization": organization_id,
                "labels": sorted(labels),
                "events": sorted(events)[:MAX_EVENT_IDS],
                "origin": PROCESS_ID,
            }
            try:
                await layer.group_send(group_name(organization_id), message)
            except Exception:  # noqa: BLE001 - Redis down: the hubs' outbox poll catches the change
                logger.warning("Could not publish a change of %s to the channel layer", organization_id, exc_info=True)

    def drain(self, timeout):
        """Send what is pending now (at exit: a command's last write should not wait for the poll)."""
        with self.lock:
            if not self.pending:
                return
        future = asyncio.run_coroutine_threadsafe(self.send(), self.loop)
        try:
            future.result(timeout)
        except Exception:  # noqa: BLE001 - exiting anyway; the poll catches it
            logger.warning("Pending change notifications not sent at exit", exc_info=True)


_publisher_instance = None
_publisher_lock = threading.Lock()


def _publisher():
    global _publisher_instance, PROCESS_ID
    with _publisher_lock:
        if _publisher_instance is None or _publisher_instance.pid != os.getpid():
            # First use, or a forked child (a Celery worker): its own thread and its own id.
            if _publisher_instance is not None:
                PROCESS_ID = f"{os.getpid()}-{secrets.token_hex(6)}"
            _publisher_instance = _Publisher()
        return _publisher_instance


@atexit.register
def _drain_at_exit():
    publisher = _publisher_instance
    if publisher is not None and publisher.pid == os.getpid():
        publisher.drain(timeout=2)
