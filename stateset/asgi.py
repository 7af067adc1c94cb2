"""ASGI entry point: HTTP to Django, WebSocket to the GraphQL consumer (subscriptions).

    uvicorn stateset.asgi:application        # production, beside gunicorn (README, "Production")

WebSocket paths: `/v1/ws` (Hasura's), `/graphql` and `/v1/graphql` (where clients that use one URL
for queries and subscriptions connect). Any other WebSocket path is refused.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stateset.settings")
# Django is set up (apps loaded) before the consumers are imported.
django_application = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import re_path  # noqa: E402

from apps.graphql.api.consumers import GraphQLConsumer, NotFoundConsumer  # noqa: E402

websocket_urlpatterns = [
    re_path(r"^/?(?:v1/ws|(?:v1/)?graphql)/?$", GraphQLConsumer.as_asgi()),
    re_path(r"", NotFoundConsumer.as_asgi()),
]



async def lifespan(scope, receive, send):
    """ASGI lifespan (Django's handler has none): nothing to set up; the GraphQL hub starts with
    the first WebSocket connection."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


application = ProtocolTypeRouter(
    {"http": django_application, "websocket": URLRouter(websocket_urlpatterns), "lifespan": lifespan}
)
