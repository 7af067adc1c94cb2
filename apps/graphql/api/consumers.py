"""The WebSocket door to the GraphQL API (`/v1/ws`, `/graphql`, `/v1/graphql`): both protocols.

The client's `Sec-WebSocket-Protocol` picks the protocol:

- `graphql-transport-ws` (the GraphQL over WebSocket protocol of the `graphql-ws` library, what
  current clients speak): `connection_init` -> `connection_ack`, `ping`/`pong`, `subscribe` ->
  `next`... `complete` or `error`, the client's `complete` to stop. Its close codes: 4400 an invalid
  message, 4401 `subscribe` before the acknowledgement, 4403 a refused (or revoked) credential,
  4408 no `connection_init` in time, 4409 an operation id already running, 4429 a second
  `connection_init`, 4500 an internal error.
- `graphql-ws` (Apollo's legacy subscriptions-transport-ws, which Hasura's console and older
  clients speak; also taken when no subprotocol is offered, as Hasura does): `connection_init` ->
  `connection_ack` (or `connection_error`), `ka` keep-alives, `start` -> `data`... `complete` or
  `error`, `stop` (answered with `complete`), `connection_terminate`.

The credential comes in the `connection_init` payload (apps.graphql.sessions) and gives the actor
REST would; each operation runs against that actor's own schema. Subscriptions are live queries
and streams served by the process's hub (apps.graphql.live); queries and mutations sent over the
socket answer once and complete, as Hasura allows. Each operation counts against the plan's rate
limits like an HTTP request. Limits: `GRAPHQL_WS_MAX_MESSAGE_BYTES` per message,
`GRAPHQL_WS_MAX_OPERATIONS` running operations per connection.
"""

import asyncio
import dataclasses
import logging

import orjson
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from graphql import OperationType

from apps.core import ratelimit
from apps.core.errors import APIError
from apps.core.parsers import load_json

from .. import live, sessions
from ..execution import Context, execute_operation
from ..schema import get_schema
from ..tables import all_tables

logger = logging.getLogger("stateset.graphql.ws")

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"

# graphql-transport-ws close codes.
BAD_REQUEST = 4400
UNAUTHORIZED = 4401
FORBIDDEN = 4403
INIT_TIMEOUT = 4408
SUBSCRIBER_EXISTS = 4409
TOO_MANY_INITS = 4429
INTERNAL_ERROR = 4500
# The client does not read what it is sent (RFC 6455: try again later).
TRY_AGAIN_LATER = 1013

_CLOSE = object()


def option(name, default):
    return getattr(settings, name, default)


def _close_reason(text):
    """A close frame's reason holds at most 123 bytes of UTF-8."""
    encoded = text.encode()
    return text if len(encoded) <= 123 else encoded[:120].decode(errors="ignore") + "..."


def _error(message, code, **extensions):
    return {"message": message, "extensions": {"code": code, **extensions}}


def _api_error(exc):
    error = _error(exc.message, exc.code)
    if exc.param:
        error["extensions"]["param"] = exc.param
    return error


class GraphQLConsumer(AsyncWebsocketConsumer):
    # Connections do not listen on the channel layer: the process's hub does, once for all.
    channel_layer_alias = None

    async def connect(self):
        offered = self.scope.get("subprotocols") or []
        if TRANSPORT_WS in offered:
            self.protocol = TRANSPORT_WS
        elif LEGACY_WS in offered or not offered:
            self.protocol = LEGACY_WS
        else:
            await self.close()  # before accepting: the handshake is refused (HTTP 403)
            return
        self.legacy = self.protocol == LEGACY_WS
        self.path = self.scope.get("path", "")
        self.request_id = sessions.new_request_id()
        self.actor = None
        self.meta = None
        self.init_received = False
        self.acknowledged = False
        self.closing = False
        self.subscriptions = {}  # op id -> live.Subscription
        self.operations = {}  # op id -> the task preparing or running it
        self.outbox = asyncio.Queue()
        self.hub = live.get_hub()
        await self.accept(subprotocol=self.protocol if offered else None)
        loop = asyncio.get_running_loop()
        self.writer = loop.create_task(self._write_forever())
        self.timers = [loop.call_later(option("GRAPHQL_WS_INIT_TIMEOUT", 10.0), self._init_timed_out)]

    async def disconnect(self, code):
        if not hasattr(self, "hub"):
            return
        self.closing = True
        self.hub.connection_closed(self)
        for task in self.operations.values():
            task.cancel()
        for timer in self.timers:
            timer.cancel()
        self.writer.cancel()

    # Sending ----------------------------------------------------------------------------------

    def _queue(self, item):
        if self.closing:
            return
        if self.outbox.qsize() >= option("GRAPHQL_WS_MAX_QUEUED_MESSAGES", 1000):
            logger.warning("A WebSocket client reads too slowly; closing it")
            self._close_soon(TRY_AGAIN_LATER, "Too many messages waiting to be sent; connect again.")
            return
        self.outbox.put_nowait(item)

    def _send_json(self, message):
        self._queue(orjson.dumps(message).decode())

    def _close_soon(self, code, reason):
        if self.closing:
            return
        self.outbox.put_nowait((_CLOSE, code, _close_reason(reason)))
        self.closing = True
        self.hub.connection_closed(self)
        for task in self.operations.values():
            task.cancel()

    async def _write_forever(self):
        try:
            while True:
                item = await self.outbox.get()
                if isinstance(item, tuple) and item[0] is _CLOSE:
                    await self.close(code=item[1], reason=item[2])
                    return
                await self.send(text_data=item)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the client went away while we wrote
            logger.debug("WebSocket write failed", exc_info=True)

    def deliver(self, subscription, payload):
        """A result for a subscription (from the hub): `next`, or `data` in the legacy protocol."""
        if subscription.group is None:
            return  # stopped meanwhile
        kind = "data" if self.legacy else "next"
        self._queue(f'{{"id":{orjson.dumps(subscription.op_id).decode()},"type":"{kind}","payload":{payload}}}')

    def _send_errors(self, op_id, errors):
        """An operation refused before it ran: `error` (the legacy protocol's payload is one error)."""
        if self.legacy:
            payload = dict(errors[0])
            if len(errors) > 1:
                payload["errors"] = errors
        else:
            payload = errors
        self._send_json({"id": op_id, "type": "error", "payload": payload})

    def _protocol_error(self, message, op_id=None):
        """An invalid message: graphql-transport-ws closes with 4400; the legacy protocol answers
        an error and goes on."""
        if self.legacy:
            message = {"type": "error", "payload": _error(message, "BAD_REQUEST")}
            if op_id is not None:
                message["id"] = op_id
            self._send_json(message)
        else:
            self._close_soon(BAD_REQUEST, message)

    def _init_timed_out(self):
        if not self.init_received:
            self._close_soon(INIT_TIMEOUT, "Connection initialisation timeout")

    # Receiving --------------------------------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None):
        if self.closing:
            return
        raw = text_data.encode() if text_data is not None else bytes_data
        limit = option("GRAPHQL_WS_MAX_MESSAGE_BYTES", 1024 * 1024)
        if len(raw) > limit:
            return self._protocol_error(f"Message too large: {len(raw)} bytes; the maximum is {limit}.")
        try:
            message = load_json(raw)
        except APIError as exc:
            return self._protocol_error(f"Invalid message: {exc.message}")
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            return self._protocol_error("Invalid message: a JSON object with a `type` is expected.")
        handler = getattr(self, f"_on_{message['type']}", None)
        allowed = LEGACY_TYPES if self.legacy else TRANSPORT_TYPES
        if handler is None or message["type"] not in allowed:
            return self._protocol_error(f"Invalid message: unknown type {message['type']!r}.", message.get("id"))
        try:
            await handler(message)
        except Exception:  # noqa: BLE001 - the connection answers in its protocol, never with a traceback
            logger.exception("GraphQL WebSocket message failed")
            self._close_soon(INTERNAL_ERROR, "Internal server error")

    async def _on_connection_init(self, message):
        if self.init_received:
            if self.legacy:
                error = _error("The connection is already initialised.", "BAD_REQUEST")
                self._send_json({"type": "connection_error", "payload": error})
            else:
                self._close_soon(TOO_MANY_INITS, "Too many initialisation requests")
            return
        self.init_received = True
        try:
            self.meta = sessions.connection_meta(self.scope, message.get("payload"))
            self.actor = await self.hub.run_sync(self._authenticate)
        except APIError as exc:
            return self._refuse(exc)
        if self.closing:
            return  # timed out or closed while the credential was checked
        self.acknowledged = True
        self.hub.connection_opened(self)
        self._send_json({"type": "connection_ack"})
        if self.legacy:
            self._send_json({"type": "ka"})
            self.timers.append(asyncio.get_running_loop().call_later(self._keepalive_interval(), self._keepalive))

    def _authenticate(self):
        """The actor of the connection's credential; the attempt counts against the rate limits as
        an HTTP request does (a refused one per address), so keys cannot be guessed faster here."""
        request = sessions.SocketRequest(self.meta, self.path, self.request_id)
        try:
            actor = sessions.authenticate(self.meta, self.path, self.request_id)
        except APIError:
            ratelimit.check(request, None, None)
            raise
        try:
            ratelimit.check(request, actor, actor.organization if actor else None)
        finally:
            ratelimit.release(request)
        return actor

    def _refuse(self, exc):
        error = _api_error(exc)
        if self.legacy:
            self._send_json({"type": "connection_error", "payload": error})
        self._close_soon(FORBIDDEN, f"Forbidden: {exc.message}")

    @staticmethod
    def _keepalive_interval():
        return option("GRAPHQL_WS_KEEPALIVE_SECONDS", 10.0)

    def _keepalive(self):
        if self.closing:
            return
        self._send_json({"type": "ka"})
        self.timers.append(asyncio.get_running_loop().call_later(self._keepalive_interval(), self._keepalive))

    async def _on_ping(self, message):
        pong = {"type": "pong"}
        if message.get("payload") is not None:
            pong["payload"] = message["payload"]
        self._send_json(pong)

    async def _on_pong(self, message):
        pass

    async def _on_subscribe(self, message):
        op_id = message.get("id")
        if not self.acknowledged:
            if self.legacy:
                return self._send_errors(op_id, [_error("Send connection_init first.", "BAD_REQUEST")])
            return self._close_soon(UNAUTHORIZED, "Unauthorized")
        payload = message.get("payload")
        if not isinstance(op_id, str) or not op_id or len(op_id) > 256:
            return self._protocol_error("Invalid message: `id` must be a non-empty string.")
        if not isinstance(payload, dict):
            return self._protocol_error("Invalid message: `payload` must be an object with `query`.", op_id)
        if op_id in self.subscriptions or op_id in self.operations:
            if not self.legacy:
                return self._close_soon(SUBSCRIBER_EXISTS, f"Subscriber for {op_id} already exists")
            self._stop(op_id)  # Apollo's servers replace an operation started again under its id
        maximum = option("GRAPHQL_WS_MAX_OPERATIONS", 100)
        if len(self.subscriptions) + len(self.operations) >= maximum:
            message = f"This connection already runs {maximum} operations, the maximum; complete one first."
            return self._send_errors(op_id, [_error(message, "RATE_LIMIT_EXCEEDED")])
        self.operations[op_id] = asyncio.get_running_loop().create_task(self._start(op_id, payload))

    _on_start = _on_subscribe  # the legacy protocol's name for it

    async def _start(self, op_id, payload):
        query, variables, operation_name = payload.get("query"), payload.get("variables"), payload.get("operationName")
        request_id = sessions.new_request_id()
        try:
            outcome = await self.hub.run_sync(self._prepare, request_id, query, variables, operation_name)
            if self.operations.get(op_id) is not asyncio.current_task():
                return  # completed by the client meanwhile
            kind, detail = outcome
            if kind == "errors":
                self._send_errors(op_id, detail)
            elif kind == "single":
                kind_name = "data" if self.legacy else "next"
                self._send_json({"id": op_id, "type": kind_name, "payload": detail})
                self._send_json({"id": op_id, "type": "complete"})
            else:
                self.subscriptions[op_id] = self.hub.subscribe(self, op_id, self.actor, detail)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - this operation fails; the connection goes on
            logger.exception("GraphQL WebSocket operation failed")
            self._send_errors(op_id, [_error("An internal error occurred.", "INTERNAL_ERROR")])
        finally:
            if self.operations.get(op_id) is asyncio.current_task():
                del self.operations[op_id]

    def _prepare(self, request_id, query, variables, operation_name):
        """On a hub thread: the rate limits, then the document checked; a query or a mutation also
        runs here (one answer), as it would over HTTP."""
        request = sessions.SocketRequest(self.meta, self.path, request_id)
        actor = self.actor
        try:
            ratelimit.check(request, actor, actor.organization if actor else None)
            kind, detail = live.prepare(actor, query, variables, operation_name)
            if kind != "single":
                return kind, detail
            if actor is not None:
                actor = dataclasses.replace(actor, request_id=request_id)
            context = Context(
                actor=actor, tables=all_tables(), request=sessions.drf_request(self.meta, self.path, request_id)
            )
            response = execute_operation(
                get_schema(actor),
                context,
                query,
                variables,
                operation_name,
                (OperationType.QUERY, OperationType.MUTATION),
                full_schema=get_schema(full=True),
            )
            if "data" not in response:
                return "errors", response["errors"]
            return "single", response
        except APIError as exc:
            return "errors", [_api_error(exc)]
        finally:
            ratelimit.release(request)

    async def _on_complete(self, message):
        op_id = message.get("id")
        if isinstance(op_id, str):
            self._stop(op_id)

    async def _on_stop(self, message):
        op_id = message.get("id")
        if isinstance(op_id, str) and (op_id in self.subscriptions or op_id in self.operations):
            self._stop(op_id)
            self._send_json({"id": op_id, "type": "complete"})

    def _stop(self, op_id):
        subscription = self.subscriptions.pop(op_id, None)
        if subscription is not None:
            self.hub.unsubscribe(subscription)
        task = self.operations.pop(op_id, None)
        if task is not None:
            task.cancel()

    async def _on_connection_terminate(self, message):
        self._close_soon(1000, "")

    # From the hub -----------------------------------------------------------------------------

    def credential_refused(self, exc):
        """The credential was revoked, expired or now gives other permissions: each subscription
        ends with the error, then the connection closes (4403)."""
        if self.closing:
            return
        if exc is None:
            error = _error("The credential's permissions changed; connect again.", "INVALID_API_KEY")
        else:
            error = _api_error(exc)
        for op_id in list(self.subscriptions):
            self._stop(op_id)
            self._send_errors(op_id, [error])
        if self.legacy:
            self._send_json({"type": "connection_error", "payload": error})
        self._close_soon(FORBIDDEN, f"Forbidden: {error['message']}")


TRANSPORT_TYPES = frozenset({"connection_init", "ping", "pong", "subscribe", "complete"})
LEGACY_TYPES = frozenset({"connection_init", "start", "stop", "connection_terminate"})


class NotFoundConsumer(AsyncWebsocketConsumer):
    """Any other WebSocket path: the handshake is refused (HTTP 403)."""

    channel_layer_alias = None

    async def connect(self):
        await self.close()
