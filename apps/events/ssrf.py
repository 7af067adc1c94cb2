"""Server-side request forgery guard for webhook URLs.

A webhook URL is fetched by our servers, so a URL naming a private, loopback, link-local (cloud
metadata at 169.254.169.254), multicast or reserved address would let a tenant probe our network.
Such URLs are refused unless `WEBHOOK_ALLOW_PRIVATE_URLS` is on (local development and tests).
The check runs when an endpoint is saved and again before every request, on every address the
host name resolves to (a name may be re-pointed after it was accepted).
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings


class UnsafeURL(ValueError):
    pass


def _is_public(address):
    ip = ipaddress.ip_address(address)
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_url(url, *, unresolvable_ok=False):
    """Raise UnsafeURL when `url` is not an http(s) URL to a public address.

    `unresolvable_ok`: when an endpoint is saved, a name that does not resolve (yet) is accepted;
    the check before each request refuses it."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL("Webhook URLs must use http or https.")
    host = parts.hostname
    if not host:
        raise UnsafeURL("The webhook URL has no host.")
    if parts.username or parts.password:
        raise UnsafeURL("Webhook URLs may not carry credentials; use the signing secret.")
    if settings.WEBHOOK_ALLOW_PRIVATE_URLS:
        return
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        if host.lower() == "localhost" or host.lower().endswith((".localhost", ".local", ".internal")):
            raise UnsafeURL(f"{host} is a private host name.") from None
        try:
            infos = socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80))
        except (socket.gaierror, UnicodeError) as exc:
            if unresolvable_ok:
                return
            raise UnsafeURL(f"The host {host} does not resolve ({exc}).") from None
        addresses = sorted({info[4][0].split("%")[0] for info in infos})
    for address in addresses:
        if not _is_public(address):
            raise UnsafeURL(f"{host} resolves to {address}, a private, loopback or link-local address.")
