from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularRedocView, SpectacularSwaggerView

from apps.accounts.api.views import AuthTokenView
from apps.core.endpoints import api_index, api_not_found, favicon, health
from apps.core.routing import load_collections
from apps.graphql.api.views import GraphQLView

# Every installed app's collections (its api/urls.py `collections`), in INSTALLED_APPS order.
router = load_collections()

api_extra = [
    path("auth/token", AuthTokenView.as_view(), name="auth-token"),
    re_path(r"^openapi\.json$", SpectacularJSONAPIView.as_view(), name="openapi"),
    re_path(r"^docs/?$", SpectacularSwaggerView.as_view(url_name="openapi"), name="api-docs"),
    re_path(r"^redoc/?$", SpectacularRedocView.as_view(url_name="openapi"), name="api-redoc"),
]

urlpatterns = [
    re_path(r"^health/?$", health, name="health"),
    re_path(r"^favicon\.ico$", favicon, name="favicon"),
    re_path(r"^(?:api/)?v1/?$", api_index, name="api-index"),
    # Before the /v1 catch-all: Hasura clients post to /v1/graphql, others to /graphql.
    re_path(r"^(?:v1/)?graphql/?$", GraphQLView.as_view(), name="graphql"),
    path("v1/", include(api_extra)),
    path("v1/", include(router.canonical.urls)),
    re_path(r"^(?:api/)?v1/", include(router.aliased.urls)),
    re_path(r"^(?:api/)?v1/", include([re_path(r"^auth/token/?$", AuthTokenView.as_view())])),
    re_path(r"^(?:api/)?v1(?:/.*)?$", api_not_found),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("", include("apps.core.dashboard_urls")),
]


handler400 = "apps.core.endpoints.bad_request"
handler403 = "apps.core.endpoints.permission_denied"
handler404 = "apps.core.endpoints.page_not_found"
handler500 = "apps.core.endpoints.server_error"
