"""Server-side request forgery guard for webhook URLs.

A webhook URL is fetched by our servers, so a URL naming one of our own or a cloud's internal
addresses would let a tenant probe our network or read instance credentials. Only http(s) URLs
whose host is, or resolves only to, public addresses pass (docs/webhooks.md, "URLs").

`WEBHOOK_ALLOW_PRIVATE_URLS` (local development and tests) relaxes exactly three kinds of
address: loopback, RFC 1918 private and IPv6 unique-local. Link-local and cloud metadata
addresses and names stay refused whatever the setting: a development box in a cloud has a
metadata service too.

IPv6 forms that carry an IPv4 address (IPv4-mapped, NAT64 `64:ff9b::/96`, 6to4) reach that
IPv4 address through the kernel or a translator (`[::ffff:a9fe:a9fe]` is 169.254.169.254), so
they are judged by it, and it must be public even with the setting on. They are not refused
outright because DNS64 resolvers hand out NAT64 addresses for every IPv4-only public host: on an
IPv6-only network that is how ordinary receivers look.
The forms whose IPv4 address cannot be judged reliably are refused outright: IPv4-compatible
`::/96` (deprecated since 2006, never a real receiver), NAT64 local-use `64:ff9b:1::/48` (where
the IPv4 address sits depends on the operator's prefix length) and Teredo `2001::/32` (the
address is obfuscated and the path runs through relays we do not control).

`resolve()` returns the checked addresses; the sender connects to exactly those (no second
look-up a re-pointed name could win, i.e. no DNS rebinding window).
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings


class UnsafeURL(ValueError):
    pass


class Unresolvable(UnsafeURL):
    """The host name does not resolve (now). Not a verdict on the URL: it may resolve later."""


_NETWORK = ipaddress.ip_network

# Loopback, RFC 1918 and unique-local: what WEBHOOK_ALLOW_PRIVATE_URLS lets through.
_DEVELOPMENT_NETWORKS = tuple(
    _NETWORK(network)
    for network in ("127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "::1/128", "fc00::/7")
)
# Inside the unique-local range, but AWS's instance services live there: the IPv6 metadata
# service (fd00:ec2::254), DNS (::253) and time (::123).
_METADATA_NETWORKS = (_NETWORK("fd00:ec2::/32"),)
_NAT64 = _NETWORK("64:ff9b::/96")
_REFUSED_TRANSLATIONS = {
    _NETWORK("::/96"): "an IPv4-compatible IPv6 address (deprecated)",
    _NETWORK("64:ff9b:1::/48"): "a local-use NAT64 address",
    _NETWORK("2001::/32"): "a Teredo address",
}

_METADATA_NAMES = frozenset({"metadata.goog", "metadata.tencentyun.com"})
# `metadata`, `metadata.google.internal`, `instance-data`, `instance-data.ec2.internal`, ...
_METADATA_FIRST_LABELS = frozenset({"metadata", "instance-data"})
_PRIVATE_NAME_SUFFIXES = (".localhost", ".local", ".internal")


@dataclass(frozen=True)
class Destination:
    host: str  # ASCII: the name for the Host header and TLS
    port: int
    addresses: tuple[str, ...]  # every address the host resolved to, all checked, best first


def check_url(url, *, unresolvable_ok=False):
    """Raise UnsafeURL when `url` is not an http(s) URL to a public address.

    `unresolvable_ok`: when an endpoint is saved, a name that does not resolve (yet) is accepted;
    the check before each request refuses it."""
    try:
        resolve(url)
    except Unresolvable:
        if not unresolvable_ok:
            raise


def resolve(url):
    """Resolve the URL's host once and check every address; raise UnsafeURL (Unresolvable when
    the name does not resolve) or return the Destination to connect to."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeURL("The webhook URL is not a valid URL.") from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeURL("Webhook URLs must use http or https.")
    if not parts.hostname:
        raise UnsafeURL("The webhook URL has no host.")
    if parts.username or parts.password:
        raise UnsafeURL("Webhook URLs may not carry credentials; use the signing secret.")
    allow_private = settings.WEBHOOK_ALLOW_PRIVATE_URLS
    host = parts.hostname
    try:
        addresses = (str(ipaddress.ip_address(host)),)
    except ValueError:
        host = _checked_name(host, allow_private=allow_private)
        addresses = _addresses(host, port)
    for address in addresses:
        refusal = address_refusal(address, allow_private=allow_private)
        if refusal:
            subject = address if address == host else f"{host} resolves to {address}, which"
            raise UnsafeURL(f"{subject} is {refusal}.")
    return Destination(host=host, port=port, addresses=addresses)


def address_refusal(address, *, allow_private=False):
    """Why a connection to `address` is refused (a phrase), or None when it is allowed."""
    ip = ipaddress.ip_address(address)
    if ip.version == 6:
        if ip.scope_id:
            return "a scoped (link-local) address"
        for network, form in _REFUSED_TRANSLATIONS.items():
            # :: and ::1 sit in ::/96 too; they are judged below as unspecified and loopback.
            if ip in network and int(ip) > 1:
                return f"{form}, a form webhook URLs may not use"
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            # Judged strictly: the setting is for the addresses developers type, not these.
            refusal = address_refusal(str(embedded))
            return refusal and f"an IPv6 form of {embedded}, {refusal}"
    if ip.is_link_local or any(ip in network for network in _METADATA_NETWORKS):
        return "a link-local or cloud metadata address"
    if _is_public(ip):
        return None
    if allow_private and any(ip in network for network in _DEVELOPMENT_NETWORKS):
        return None
    return "a private, loopback, unspecified, multicast or reserved address"


def _embedded_ipv4(ip):
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _is_public(ip):
    return ip.is_global and not ip.is_multicast and not ip.is_reserved


def _checked_name(host, *, allow_private):
    """The host name in ASCII (as resolved and sent), refused when it names a metadata service
    or, unless private URLs are allowed, a local one."""
    try:
        name = host.lower().rstrip(".").encode("idna").decode("ascii")
    except UnicodeError:
        name = ""
    if not name:
        raise UnsafeURL(f"{host} is not a valid host name.")
    first_label = name.split(".", 1)[0]
    single_or_internal = "." not in name or name.endswith(".internal")
    if name in _METADATA_NAMES or (first_label in _METADATA_FIRST_LABELS and single_or_internal):
        raise UnsafeURL(f"{host} is a cloud metadata host name.")
    if not allow_private and (name == "localhost" or name.endswith(_PRIVATE_NAME_SUFFIXES)):
        raise UnsafeURL(f"{host} is a private host name.")
    return name


def _addresses(host, port):
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise Unresolvable(f"The host {host} does not resolve ({exc}).") from None
    # The resolver's order is kept (it ranks the addresses by preference); duplicates go.
    addresses = tuple(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise Unresolvable(f"The host {host} does not resolve.")
    return addresses
