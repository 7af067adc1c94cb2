from rest_framework import renderers

from .jsonutil import dumps


class FastJSONRenderer(renderers.BaseRenderer):
    media_type = "application/json"
    format = "json"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        return dumps(data)


class BrowsableAPIRenderer(renderers.BrowsableAPIRenderer):
    """DRF's browsable API, without the raw-data forms that would bypass our input handling."""

    def get_rendered_html_form(self, data, view, method, request):
        return None
