"""The webhook URL guard: which addresses pass with and without WEBHOOK_ALLOW_PRIVATE_URLS, the
API's 422, and deliveries pinned to the address that was checked (no DNS rebinding window)."""

import datetime
import ipaddress
import socket
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from apps.events import sender
from apps.events.models import WebhookEndpoint
from apps.events.signing import new_secret
from apps.events.ssrf import Unresolvable, UnsafeURL, check_url
from tests.webhooks_receiver import Receiver

# The examples: metadata and loopback behind IPv6 forms that carry an IPv4 address.
EMBEDDED_IPV4 = [
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of 169.254.169.254
    "http://[2002:a9fe:a9fe::]/",  # 6to4 of 169.254.169.254
    "http://[::7f00:1]/",  # IPv4-compatible 127.0.0.1
    "http://[::a9fe:a9fe]/",  # IPv4-compatible 169.254.169.254
    "http://[::ffff:a9fe:a9fe]/",  # IPv4-mapped 169.254.169.254
    "http://[::ffff:127.0.0.1]/",
    "http://[64:ff9b::10.0.0.1]/",
    "http://[2002:7f00:1::1]/",
    "http://[64:ff9b:1::808:808]/",  # local-use NAT64: refused whatever it carries
    "http://[::808:808]/",  # IPv4-compatible: refused whatever it carries
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",  # Teredo
]
METADATA = [
    "http://169.254.169.254/latest/meta-data/",
    "http://169.254.170.2/v2/credentials",  # ECS task credentials
    "http://[fe80::1]/",
    "http://[fe80::a9fe:a9fe%25eth0]/",
    "http://[fd00:ec2::254]/latest/meta-data/",  # AWS IMDS over IPv6, inside the unique-local range
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://METADATA.Google.Internal./computeMetadata/v1/",
    "http://metadata/computeMetadata/v1/",
    "http://metadata.goog/",
    "http://metadata.azure.internal/",
    "http://instance-data/latest/",
    "http://instance-data.ec2.internal/latest/",
    "http://metadata.tencentyun.com/",
]
NEVER_A_RECEIVER = [
    "http://0.0.0.0/",
    "http://[::]/",
    "http://224.0.0.1/",
    "http://[ff02::1]/",
    "http://[ff0e::1]/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "http://100.64.0.1/",  # carrier-grade NAT (Alibaba's metadata service is 100.100.100.200)
    "http://[2001:db8::1]/",
    "http://[100::1]/",
]
ALWAYS_REFUSED = EMBEDDED_IPV4 + METADATA + NEVER_A_RECEIVER
# What WEBHOOK_ALLOW_PRIVATE_URLS lets through, and only that.
DEVELOPMENT = [
    "http://127.0.0.1:8000/hooks",
    "http://127.1.2.3/",
    "http://[::1]:8000/hooks",
    "http://10.1.2.3/",
    "http://172.16.5.4/",
    "http://192.168.0.10/",
    "http://[fd12:3456:789a::1]/",
    "http://localhost:8000/hooks",
    "http://host.docker.internal/",
    "http://hooks.dev.test/",  # resolves to 192.168.1.20 (below)
]
PUBLIC = [
    "https://93.184.215.14/hook",
    "https://[2606:4700:4700::1111]/hook",
    "http://[64:ff9b::808:808]/",  # NAT64 (DNS64 networks synthesise these) of 8.8.8.8
    "http://[2002:808:808::1]/",  # 6to4 of 8.8.8.8
    "http://[::ffff:8.8.8.8]/",
    "https://hooks.public.test/stateset",  # resolves to public addresses only (below)
]


class FakeDNS:
    """Answers look-ups of names ending in `.test`: `answers[name]` is a list of answers, one per
    look-up (the last repeats). Every other name goes to the system resolver."""

    def __init__(self, real):
        self.real = real
        self.answers = {}
        self.lookups = []

    def getaddrinfo(self, host, port, *args, **kwargs):
        if not (isinstance(host, str) and host.endswith(".test")):
            return self.real(host, port, *args, **kwargs)
        self.lookups.append(host)
        answers = self.answers.get(host)
        if not answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        addresses = answers.pop(0) if len(answers) > 1 else answers[0]
        return [self._info(address, port) for address in addresses]

    @staticmethod
    def _info(address, port):
        if ipaddress.ip_address(address).version == 6:
            return (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0))
        return (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))


@pytest.fixture
def dns(monkeypatch):
    fake = FakeDNS(socket.getaddrinfo)
    fake.answers["hooks.dev.test"] = [["192.168.1.20"]]
    fake.answers["hooks.public.test"] = [["2606:4700:4700::1111", "93.184.215.14"]]
    monkeypatch.setattr(socket, "getaddrinfo", fake.getaddrinfo)
    return fake


@pytest.fixture(params=[False, True], ids=["strict", "private-allowed"])
def allow_private(request, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = request.param
    return request.param


# The guard ---------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ALWAYS_REFUSED)
def test_refused_whatever_the_setting(dns, allow_private, url):
    with pytest.raises(UnsafeURL):
        check_url(url, unresolvable_ok=True)


@pytest.mark.parametrize("url", DEVELOPMENT)
def test_development_addresses_pass_only_with_the_setting(dns, settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    with pytest.raises(UnsafeURL):
        check_url(url, unresolvable_ok=True)
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    check_url(url, unresolvable_ok=True)  # host.docker.internal resolves inside Docker only


@pytest.mark.parametrize("url", PUBLIC)
def test_public_addresses_pass(dns, allow_private, url):
    check_url(url)


def test_link_local_message_names_the_kind(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    with pytest.raises(UnsafeURL, match="link-local or cloud metadata"):
        check_url("http://[64:ff9b::a9fe:a9fe]/")


@pytest.mark.parametrize(
    "addresses",
    [["93.184.215.14", "10.0.0.1"], ["93.184.215.14", "169.254.169.254"], ["2606:4700::1", "::ffff:127.0.0.1"]],
)
def test_every_resolved_address_is_checked(dns, settings, addresses):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    dns.answers["mixed.test"] = [addresses]
    with pytest.raises(UnsafeURL, match=r"mixed\.test resolves to"):
        check_url("https://mixed.test/hook")


def test_a_name_for_metadata_is_refused_even_with_private_urls_allowed(dns, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    dns.answers["rebound.test"] = [["127.0.0.1", "169.254.169.254"]]
    with pytest.raises(UnsafeURL, match="link-local"):
        check_url("http://rebound.test/")


def test_an_unresolvable_name_is_accepted_on_save_only(dns, allow_private):
    check_url("https://not-yet.test/hook", unresolvable_ok=True)
    with pytest.raises(Unresolvable):
        check_url("https://not-yet.test/hook")


@pytest.mark.parametrize("url", ["http://[::1/", "http://example.com:99999/", "http://./", "https:///path"])
def test_malformed_urls_are_refused(allow_private, url):
    with pytest.raises(UnsafeURL):
        check_url(url, unresolvable_ok=True)


# The API -----------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("url", EMBEDDED_IPV4[:4] + ["http://169.254.169.254/", "http://metadata.google.internal/"])
def test_api_refuses_with_422(api_client, allow_private, url):
    response = api_client.post("/v1/webhooks", {"url": url, "events": ["*"]})
    assert response.status_code == 422, response.content
    assert response.json()["param"] == "url"
    assert not WebhookEndpoint.objects.exists()


# Deliveries --------------------------------------------------------------------------------


def deliver(url):
    return sender.send(url=url, body=b'{"id": "evt_1"}', message_id="evt_1", secrets_in_use=[new_secret()])


def test_delivery_goes_to_the_checked_address_when_the_name_is_rebound(dns, settings):
    """The name answers 127.0.0.1 to the check and the metadata address afterwards: the request
    must still reach the receiver on 127.0.0.1, because the name is looked up only once."""
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    with Receiver() as receiver:
        port = receiver.server.server_address[1]
        dns.answers["rebind.test"] = [["127.0.0.1"], ["169.254.169.254"]]
        outcome = deliver(f"http://rebind.test:{port}/hooks?x=1")
        assert outcome.verdict == sender.SUCCESS, outcome.error
        assert dns.lookups == ["rebind.test"]
        (request,) = receiver.requests
    assert request.path == "/hooks?x=1"
    assert request.headers["Host"] == f"rebind.test:{port}"


def test_a_refused_address_among_the_answers_stops_the_delivery(dns, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    with Receiver() as receiver:
        port = receiver.server.server_address[1]
        dns.answers["half.test"] = [["127.0.0.1", "169.254.169.254"]]
        outcome = deliver(f"http://half.test:{port}/hooks")
        assert receiver.count == 0
    assert outcome.verdict == sender.PERMANENT and outcome.error.startswith("Refused:")


def test_the_next_checked_address_is_tried_when_one_refuses_connections(dns, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    with Receiver() as receiver:
        port = receiver.server.server_address[1]
        dns.answers["two.test"] = [["127.0.0.2", "127.0.0.1"]]  # nothing listens on 127.0.0.2
        outcome = deliver(f"http://two.test:{port}/hooks")
        assert outcome.verdict == sender.SUCCESS, outcome.error
        assert receiver.count == 1


def test_a_name_that_does_not_resolve_at_delivery_is_retried(dns, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    outcome = deliver("https://gone.test/hooks")
    assert outcome.verdict == sender.RETRY and "does not resolve" in outcome.error


@pytest.fixture
def tls_receiver(tmp_path):
    """A receiver on 127.0.0.1 serving a certificate for `hooks.tls.test` only; it records the
    SNI names the clients sent."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hooks.tls.test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("hooks.tls.test")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    sni_names = []
    context.sni_callback = lambda _socket, server_name, _context: sni_names.append(server_name)
    with Receiver() as receiver:
        receiver.server.socket = context.wrap_socket(receiver.server.socket, server_side=True)
        receiver.cert_file, receiver.sni_names = str(cert_file), sni_names
        yield receiver


def test_https_uses_the_name_for_sni_and_the_certificate(dns, settings, monkeypatch, tls_receiver):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    monkeypatch.setattr(sender._session(), "verify", tls_receiver.cert_file)
    port = tls_receiver.server.server_address[1]
    dns.answers["hooks.tls.test"] = [["127.0.0.1"], ["169.254.169.254"]]
    dns.answers["other.tls.test"] = [["127.0.0.1"]]

    outcome = deliver(f"https://hooks.tls.test:{port}/hooks")
    assert outcome.verdict == sender.SUCCESS, outcome.error
    assert tls_receiver.requests[0].headers["Host"] == f"hooks.tls.test:{port}"
    assert tls_receiver.sni_names == ["hooks.tls.test"]

    # Same address, another name: the certificate does not match it, so nothing is sent.
    outcome = deliver(f"https://other.tls.test:{port}/hooks")
    assert outcome.verdict == sender.RETRY and "certificate" in outcome.error.lower(), outcome.error
    assert tls_receiver.count == 1


def test_proxies_from_the_environment_are_ignored(dns, settings, monkeypatch):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # discard port: a proxy would fail the request
    with Receiver() as receiver:
        outcome = deliver(receiver.url)
        assert outcome.verdict == sender.SUCCESS, outcome.error
        assert receiver.count == 1
