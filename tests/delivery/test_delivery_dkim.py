"""DKIM: generated keys, signatures checked with dkimpy's verifier, the on-disk keyring."""

from __future__ import annotations

import asyncio
import os
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import aiosmtplib
import dkim
import dns.resolver
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from mailbeacon.delivery.dkim import (
    DEFAULT_SIGNED_HEADERS,
    DkimKey,
    DkimKeyError,
    DkimKeyring,
    GeneratedKey,
    _signature_header,
    generate_key,
    sign,
)
from tests.dns_server import TXT, DnsServer
from tests.support import free_port

Signer = Callable[[bytes, DkimKey], bytes]

BODY_LINES = [
    "Hello Ada,",
    "",
    ".a line starting with a dot, which SMTP dot-stuffs",
    "trailing spaces   ",
    "\ttabbed",
    *(f"line {i}: " + "lorem ipsum dolor sit amet " * 3 for i in range(40)),
    "",
    "",
]
HEADERS = [
    "Received: from client by relay; Mon, 4 Nov 2024 10:00:00 +0000",
    "From: Sender News <news@example.com>",
    "To: Ada <ada@example.org>, bob@example.org",
    "Subject: Our November news",
    "Date: Mon, 4 Nov 2024 10:00:00 +0000",
    "Message-ID: <1234@example.com>",
    "MIME-Version: 1.0",
    "Content-Type: text/plain; charset=utf-8",
    "Content-Transfer-Encoding: 8bit",
    "List-Unsubscribe: <https://t.example.com/u/abc>,",
    " <mailto:unsubscribe@example.com?subject=abc>",
    "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
    "Feedback-ID: campaign:account:mailbeacon",
    "X-Mailer: mailbeacon",
]


def make_message(linesep: bytes = b"\r\n", headers: list[str] = HEADERS) -> bytes:
    return linesep.join(line.encode() for line in [*headers, "", *BODY_LINES])


@pytest.fixture(scope="module")
def generated() -> GeneratedKey:
    return generate_key("example.com", "sel2024")


@pytest.fixture(scope="module")
def key(generated: GeneratedKey) -> DkimKey:
    return generated.dkim_key()


def dns_for(*keys: GeneratedKey) -> Callable[..., bytes | None]:
    records = {f"{k.dns_name}.".encode(): k.txt_record.encode() for k in keys}

    def dnsfunc(name: bytes, timeout: float = 5) -> bytes | None:
        return records.get(name)

    return dnsfunc


def verifies(message: bytes, *keys: GeneratedKey) -> bool:
    result: bool = dkim.verify(message, dnsfunc=dns_for(*keys))
    return result


def signature_tags(signed: bytes) -> dict[str, str]:
    header = signed.split(b"DKIM-Signature:", 1)[1]
    header = re.split(rb"\r?\n(?![ \t])", header, maxsplit=1)[0]
    text = re.sub(r"\s+", "", header.decode())
    return dict(tag.split("=", 1) for tag in text.split(";") if tag)


def with_cryptography(message: bytes, key: DkimKey) -> bytes:
    return sign(message, key)


def with_dkimpy(message: bytes, key: DkimKey) -> bytes:
    return _signature_header(message, key, DEFAULT_SIGNED_HEADERS, use_cryptography=False) + message


SIGNERS = pytest.mark.parametrize("signer", [with_cryptography, with_dkimpy], ids=["cryptography", "dkimpy"])


# --- generated keys -------------------------------------------------------------------------------------


def test_generated_key_and_its_dns_record(generated: GeneratedKey) -> None:
    assert generated.domain == "example.com"
    assert generated.selector == "sel2024"
    assert generated.dns_name == "sel2024._domainkey.example.com"
    assert generated.txt_record.startswith("v=DKIM1; k=rsa; p=MII")
    assert generated.private_key_pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----\n")
    private = serialization.load_pem_private_key(generated.private_key_pem, password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    assert private.key_size == 2048

    parts = generated.txt_strings()
    assert len(parts) == 2
    assert all(len(part) <= 255 for part in parts)
    assert "".join(parts) == generated.txt_record
    assert generated.zone_file_line() == f'sel2024._domainkey.example.com. IN TXT "{parts[0]}" "{parts[1]}"'
    assert generated.zone_file_line(ttl=3600).startswith("sel2024._domainkey.example.com. 3600 IN TXT ")


def test_generate_key_normalises_names() -> None:
    generated = generate_key("Bücher.Example.", "Mail-2024", bits=1024)

    assert generated.domain == "xn--bcher-kva.example"
    assert generated.selector == "mail-2024"
    assert generated.dns_name == "mail-2024._domainkey.xn--bcher-kva.example"
    assert len(generated.txt_strings()) == 1


@pytest.mark.parametrize(
    "domain", ["", "exa mple.com", "-example.com", "example..com", "a" * 64 + ".com", "ex_ample.com"]
)
def test_generate_key_rejects_bad_domains(domain: str) -> None:
    with pytest.raises(ValueError, match="invalid domain"):
        generate_key(domain)


@pytest.mark.parametrize("selector", ["", "sel ector", "sel_1", "-sel", "a.", "sel;p=x"])
def test_generate_key_rejects_bad_selectors(selector: str) -> None:
    with pytest.raises(ValueError, match="invalid DKIM selector"):
        generate_key("example.com", selector)


@pytest.mark.parametrize("bits", [512, 8192])
def test_generate_key_rejects_bad_sizes(bits: int) -> None:
    with pytest.raises(ValueError, match="bits"):
        generate_key("example.com", bits=bits)


# --- signing --------------------------------------------------------------------------------------------


@SIGNERS
def test_signed_crlf_message_verifies(signer: Signer, generated: GeneratedKey, key: DkimKey) -> None:
    message = make_message()
    signed = signer(message, key)

    assert signed.startswith(b"DKIM-Signature: ")
    assert signed.endswith(message)
    assert verifies(signed, generated)
    assert not verifies(signed, generate_key("example.com", "sel2024"))


@SIGNERS
def test_signed_lf_message_verifies_and_keeps_lf(
    signer: Signer, generated: GeneratedKey, key: DkimKey
) -> None:
    message = make_message(b"\n")
    signed = signer(message, key)

    assert b"\r" not in signed
    assert verifies(signed, generated)
    assert verifies(signed.replace(b"\n", b"\r\n"), generated)


def test_both_signing_paths_produce_the_same_signature(key: DkimKey, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("time.time", lambda: 1_730_714_400.0)
    message = make_message()

    # PKCS#1 v1.5 signatures are deterministic: the same key, headers and timestamp give the same bytes.
    assert with_cryptography(message, key) == with_dkimpy(message, key)


def test_signature_tags(key: DkimKey) -> None:
    tags = signature_tags(sign(make_message(), key))

    assert tags["v"] == "1"
    assert tags["a"] == "rsa-sha256"
    assert tags["c"] == "relaxed/relaxed"
    assert tags["d"] == "example.com"
    assert tags["s"] == "sel2024"
    assert "l" not in tags
    assert tags["h"].split(":") == [
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "feedback-id",
        "from",
    ]


def test_only_the_requested_headers_and_from_are_signed(generated: GeneratedKey, key: DkimKey) -> None:
    signed = sign(make_message(), key, headers=[b"Subject", b"Reply-To"])

    assert signature_tags(signed)["h"] == "from:subject:from"
    assert verifies(signed, generated)


@SIGNERS
def test_changes_break_the_signature(signer: Signer, generated: GeneratedKey, key: DkimKey) -> None:
    signed = signer(make_message(), key)
    assert verifies(signed, generated)

    assert not verifies(signed.replace(b"Hello Ada", b"Hello Eve"), generated)
    assert not verifies(signed.replace(b"Our November news", b"Our December news"), generated)
    assert not verifies(signed + b"appended\r\n", generated)
    second_from = signed.replace(b"To: Ada", b"From: attacker@example.net\r\nTo: Ada")
    assert not verifies(second_from, generated)
    assert not verifies(signed.replace(b"<https://t.example.com/u/abc>", b"<https://evil.test/>"), generated)


def test_relaxed_canonicalisation_tolerates_what_relays_do(generated: GeneratedKey, key: DkimKey) -> None:
    signed = sign(make_message(), key)

    relayed = b"Received: from relay by mx; Mon, 4 Nov 2024 10:00:01 +0000\r\n" + signed
    relayed = relayed.replace(b"Subject: Our November news", b"subject:   Our  November\r\n\tnews")
    relayed = relayed.replace(b"trailing spaces   ", b"trailing spaces")
    assert verifies(relayed, generated)


def test_signature_survives_an_smtp_relay(generated: GeneratedKey, key: DkimKey) -> None:
    received: list[bytes] = []

    class Handler:
        async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
            assert isinstance(envelope.original_content, bytes)
            received.append(envelope.original_content)
            return "250 OK"

    signed = sign(make_message(), key)
    controller = Controller(Handler(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        asyncio.run(
            aiosmtplib.send(
                signed,
                sender="news@example.com",
                recipients=["ada@example.org"],
                hostname="127.0.0.1",
                port=controller.port,
                timeout=10,
            )
        )
    finally:
        controller.stop()

    (content,) = received
    assert b"\r\n.a line starting with a dot" in content
    relayed = b"Received: from mailbeacon by relay.test; Mon, 4 Nov 2024 10:00:02 +0000\r\n" + content
    assert verifies(relayed, generated)


def test_verifies_with_the_record_published_in_dns(generated: GeneratedKey, key: DkimKey) -> None:
    with DnsServer({generated.dns_name: [TXT(*generated.txt_strings())]}) as server:
        resolver = dns.resolver.Resolver(configure=False)
        host, port = server.nameserver.split(":")
        resolver.nameservers = [host]
        resolver.port = int(port)

        def dnsfunc(name: bytes, timeout: float = 5) -> bytes | None:
            answer = resolver.resolve(name.decode(), "TXT", lifetime=timeout)
            return b"".join(answer[0].strings)

        assert dkim.verify(sign(make_message(), key), dnsfunc=dnsfunc)


def test_a_parent_domain_key_signs_a_subdomain_sender() -> None:
    parent = generate_key("example.com", "parent", bits=1024)
    keyring = DkimKeyring([parent.dkim_key()])
    headers = ["From: news@news.example.com", "To: ada@example.org", "Subject: hi"]
    found = keyring.key_for("news.example.com")
    assert found is not None

    signed = sign(make_message(headers=headers), found)

    assert signature_tags(signed)["d"] == "example.com"
    assert verifies(signed, parent)


def test_a_message_without_from_is_refused(key: DkimKey) -> None:
    with pytest.raises(ValueError, match="without a From header"):
        sign(make_message(headers=["To: ada@example.org", "Subject: hi"]), key)


def test_an_unparsable_message_is_refused(key: DkimKey) -> None:
    with pytest.raises(ValueError, match="cannot DKIM-sign"):
        sign(b"From: a@example.com\r\nnot a header line\r\n\r\nbody\r\n", key)


# --- the keyring ----------------------------------------------------------------------------------------


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def test_save_writes_a_private_file_and_loads_back(tmp_path: Path, permissive_umask: None) -> None:
    generated = generate_key("Example.com", "s1", bits=1024)
    keyring = DkimKeyring()

    path = keyring.save(generated, tmp_path / "dkim")

    assert path == tmp_path / "dkim" / "s1._domainkey.example.com.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.read_bytes() == generated.private_key_pem
    assert keyring.key_for("example.com") == generated.dkim_key()

    loaded = DkimKeyring.from_directory(tmp_path / "dkim")
    assert loaded.domains() == ["example.com"]
    assert loaded.key_for("EXAMPLE.COM") == generated.dkim_key()


def test_save_refuses_to_overwrite_unless_told(tmp_path: Path) -> None:
    first = generate_key("example.com", "s1", bits=1024)
    second = generate_key("example.com", "s1", bits=1024)
    path = DkimKeyring().save(first, tmp_path)

    with pytest.raises(FileExistsError, match=r"s1\._domainkey\.example\.com\.pem"):
        DkimKeyring().save(second, tmp_path)
    assert path.read_bytes() == first.private_key_pem

    keyring = DkimKeyring.from_directory(tmp_path)
    keyring.save(second, tmp_path, overwrite=True)
    assert path.read_bytes() == second.private_key_pem
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    assert keyring.key_for("example.com") == second.dkim_key()


def test_one_key_per_domain(tmp_path: Path) -> None:
    keyring = DkimKeyring()
    keyring.save(generate_key("example.com", "s1", bits=1024), tmp_path)

    with pytest.raises(DkimKeyError, match=r"already holds a DKIM key for example\.com"):
        keyring.save(generate_key("example.com", "s2", bits=1024), tmp_path)

    other = generate_key("example.com", bits=1024)
    (tmp_path / "s2._domainkey.example.com.pem").write_bytes(other.private_key_pem)
    with pytest.raises(DkimKeyError, match=r"second DKIM key for example\.com"):
        DkimKeyring.from_directory(tmp_path)


def test_key_for_prefers_the_closest_domain() -> None:
    root = DkimKey("example.com", "a", b"pem-a")
    news = DkimKey("news.example.com", "b", b"pem-b")
    keyring = DkimKeyring([root, news])

    assert keyring.key_for("example.com") == root
    assert keyring.key_for("Example.COM.") == root
    assert keyring.key_for("shop.example.com") == root
    assert keyring.key_for("news.example.com") == news
    assert keyring.key_for("eu.news.example.com") == news
    assert keyring.key_for("example.org") is None
    assert keyring.key_for("notexample.com") is None
    assert keyring.key_for("example.com.evil.test") is None
    assert keyring.key_for("com") is None
    assert keyring.key_for("not a domain") is None


def test_a_missing_directory_is_an_empty_keyring(tmp_path: Path) -> None:
    keyring = DkimKeyring.from_directory(tmp_path / "absent")

    assert len(keyring) == 0
    assert keyring.key_for("example.com") is None


def test_other_files_are_ignored(tmp_path: Path) -> None:
    (tmp_path / "README").write_text("keys live here")
    (tmp_path / "s1._domainkey.example.com.txt").write_text("v=DKIM1; k=rsa; p=...")

    assert len(DkimKeyring.from_directory(tmp_path)) == 0


def test_pkcs8_and_crlf_key_files_are_accepted(tmp_path: Path, generated: GeneratedKey) -> None:
    private = serialization.load_pem_private_key(generated.private_key_pem, password=None)
    pkcs8 = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "sel2024._domainkey.example.com.pem").write_bytes(pkcs8.replace(b"\n", b"\r\n"))

    found = DkimKeyring.from_directory(tmp_path).key_for("example.com")

    assert found is not None
    for signer in (with_cryptography, with_dkimpy):
        assert verifies(signer(make_message(), found), generated)


def _ec_pem() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _encrypted_pem() -> bytes:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        ("s1._domainkey.example.com.pem", b"not a key", "not an unencrypted PEM private key"),
        ("s1._domainkey.example.com.pem", b"", "not an unencrypted PEM private key"),
        ("s1._domainkey.example.com.pem", _encrypted_pem(), "not an unencrypted PEM private key"),
        ("s1._domainkey.example.com.pem", _ec_pem(), "must be RSA"),
        ("example.com.pem", b"", "must be named <selector>._domainkey.<domain>.pem"),
        ("s_1._domainkey.example.com.pem", b"", "invalid DKIM selector"),
        ("s1._domainkey.exa mple.com.pem", b"", "invalid domain"),
    ],
)
def test_bad_key_files_are_named_in_the_error(tmp_path: Path, name: str, content: bytes, error: str) -> None:
    (tmp_path / name).write_bytes(content)

    with pytest.raises(DkimKeyError, match=re.escape(error)) as caught:
        DkimKeyring.from_directory(tmp_path)

    assert str(tmp_path / name) in str(caught.value)


def test_an_unreadable_key_file_is_named_in_the_error(tmp_path: Path) -> None:
    # A directory stands in for an unreadable file: the tests may run as root, which chmod cannot stop.
    (tmp_path / "s1._domainkey.example.com.pem").mkdir()

    with pytest.raises(DkimKeyError, match="cannot read the DKIM key") as caught:
        DkimKeyring.from_directory(tmp_path)

    assert "s1._domainkey.example.com.pem" in str(caught.value)


def test_a_file_where_the_directory_should_be_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "dkim").write_text("")

    with pytest.raises(DkimKeyError, match="not a directory"):
        DkimKeyring.from_directory(tmp_path / "dkim")
