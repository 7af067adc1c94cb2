"""GraphiQL for staff in a browser: a GET of /graphql (or /v1/graphql) that prefers HTML, from a
logged-in staff user, answers the GraphiQL page; its requests carry the session (cookie and CSRF
token), so staff query as their membership's role in their organization.

No third-party code is kept in the repository and no PyPI package ships GraphiQL's assets, so the
page loads GraphiQL's published UMD bundle and React from a CDN, each pinned to an exact version
and checked by the browser against its Subresource Integrity hash: a file that differs by one
byte from the release is refused. The hashes are those of the files in the npm packages (the CDN
serves them unchanged); to move to another version, recompute them from the packages:

    npm pack graphiql@X.Y.Z && tar xzf graphiql-X.Y.Z.tgz
    openssl dgst -sha384 -binary package/graphiql.min.js | openssl base64 -A
"""

from dataclasses import dataclass

from django.middleware.csrf import get_token
from django.template.response import TemplateResponse

CDN = "https://cdn.jsdelivr.net/npm"


@dataclass(frozen=True)
class Asset:
    package: str
    version: str
    path: str
    integrity: str

    @property
    def url(self):
        return f"{CDN}/{self.package}@{self.version}/{self.path}"


STYLESHEETS = (
    Asset(
        "graphiql",
        "3.8.3",
        "graphiql.min.css",
        "sha384-Mq3vbRBY71jfjQAt/DcjxUIYY33ksal4cgdRt9U/hNPvHBCaT2JfJ/PTRiPKf0aM",
    ),
)
# In this order: GraphiQL's bundle expects React and ReactDOM as globals.
SCRIPTS = (
    Asset(
        "react",
        "18.3.1",
        "umd/react.production.min.js",
        "sha384-DGyLxAyjq0f9SPpVevD6IgztCFlnMF6oW/XQGmfe+IsZ8TqEiDrcHkMLKI6fiB/Z",
    ),
    Asset(
        "react-dom",
        "18.3.1",
        "umd/react-dom.production.min.js",
        "sha384-gTGxhz21lVGYNMcdJOyq01Edg0jhn/c22nsx0kyqP0TxaV5WVdsSH1fSDUf5YJj1",
    ),
    Asset(
        "graphiql",
        "3.8.3",
        "graphiql.min.js",
        "sha384-HbRVEFG0JGJZeAHCJ9Xm2+tpknBQ7QZmNlO/DgZtkZ0aJSypT96YYGRNod99l9Ie",
    ),
)


def wants_page(request):
    """A browser asking for the page: a GET with no document whose Accept prefers HTML to JSON."""
    if request.method != "GET" or request.GET.get("query"):
        return False
    return request.get_preferred_type(["application/json", "text/html"]) == "text/html"


def staff_user(request):
    """The logged-in staff user when the request is theirs by its session alone, else None."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_active or not user.is_staff:
        return None
    return user


def page(request):
    return TemplateResponse(
        request,
        "graphql/graphiql.html",
        {
            "stylesheets": STYLESHEETS,
            "scripts": SCRIPTS,
            "config": {"url": request.path, "csrfToken": get_token(request), "user": request.user.get_username()},
        },
    )
