"""DKIM: key generation, the on-disk keyring, and signing outgoing messages (RFC 6376).

Signatures are relaxed/relaxed rsa-sha256 without an ``l=`` tag. dkimpy builds the signature: it parses
the message, canonicalises the body and the headers and folds the DKIM-Signature header; only the RSA
operation itself is done by ``cryptography`` (see ``_CryptographySigner``).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dkim
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

__all__ = [
    "DEFAULT_SIGNED_HEADERS",
    "DkimKey",
    "DkimKeyError",
    "DkimKeyring",
    "GeneratedKey",
    "generate_key",
    "sign",
]

DEFAULT_SIGNED_HEADERS: tuple[bytes, ...] = (
    b"from",
    b"to",
    b"cc",
    b"subject",
    b"date",
    b"message-id",
    b"mime-version",
    b"content-type",
    b"content-transfer-encoding",
    b"reply-to",
    b"in-reply-to",
    b"references",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"feedback-id",
)

KEY_FILE_SUFFIX = ".pem"
_DOMAINKEY = "._domainkey."
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
_TXT_CHUNK = 255
MIN_KEY_BITS = 1024
MAX_KEY_BITS = 4096


class DkimKeyError(ValueError):
    """A key file (or key) that cannot be used; the message names the file."""


def normalise_domain(domain: str) -> str:
    """The lower-case ASCII (IDNA) form of a domain name; ValueError if it is not a valid host name."""
    text = domain.strip()
    if text.endswith("."):
        text = text[:-1]
    try:
        ascii_name = text.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise ValueError(f"invalid domain {domain!r}: {exc}") from None
    if not ascii_name or len(ascii_name) > 253:
        raise ValueError(f"invalid domain {domain!r}: must be 1 to 253 characters")
    for label in ascii_name.split("."):
        if not _LABEL.match(label):
            raise ValueError(
                f"invalid domain {domain!r}: label {label!r} must be 1 to 63 letters, digits or inner hyphens"
            )
    return ascii_name


def normalise_selector(selector: str) -> str:
    """A selector is one or more dot-separated labels of letters, digits and inner hyphens (RFC 6376 3.1)."""
    text = selector.strip().lower()
    if not text or len(text) > 63 * 4:
        raise ValueError(f"invalid DKIM selector {selector!r}")
    for label in text.split("."):
        if not _LABEL.match(label):
            raise ValueError(
                f"invalid DKIM selector {selector!r}: label {label!r} must be letters, digits, inner hyphens"
            )
    return text


@dataclass(frozen=True)
class GeneratedKey:
    domain: str
    selector: str
    private_key_pem: bytes
    dns_name: str
    txt_record: str

    def txt_strings(self) -> tuple[str, ...]:
        """The TXT value cut into character-strings of at most 255 octets, as DNS requires."""
        return tuple(self.txt_record[i : i + _TXT_CHUNK] for i in range(0, len(self.txt_record), _TXT_CHUNK))

    def zone_file_line(self, ttl: int | None = None) -> str:
        """Zone-file line: ``sel._domainkey.example.com. IN TXT "v=DKIM1; ..." "..."``."""
        quoted = " ".join(f'"{part}"' for part in self.txt_strings())
        ttl_part = f"{ttl} " if ttl is not None else ""
        return f"{self.dns_name}. {ttl_part}IN TXT {quoted}"

    def dkim_key(self) -> DkimKey:
        return DkimKey(domain=self.domain, selector=self.selector, private_key_pem=self.private_key_pem)


@dataclass(frozen=True)
class DkimKey:
    domain: str
    selector: str
    private_key_pem: bytes


def _txt_record_for(public_key: rsa.RSAPublicKey) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode('ascii')}"


def _pem_of(private_key: rsa.RSAPrivateKey) -> bytes:
    # PKCS#1 ("BEGIN RSA PRIVATE KEY") with LF line ends: the form every DKIM tool, dkimpy included, reads.
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def generate_key(domain: str, selector: str = "mailbeacon", bits: int = 2048) -> GeneratedKey:
    """A new RSA key for ``domain`` with the DNS record to publish at ``<selector>._domainkey.<domain>``."""
    ascii_domain = normalise_domain(domain)
    ascii_selector = normalise_selector(selector)
    if not MIN_KEY_BITS <= bits <= MAX_KEY_BITS:
        raise ValueError(f"DKIM RSA keys must have {MIN_KEY_BITS} to {MAX_KEY_BITS} bits, not {bits}")
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return GeneratedKey(
        domain=ascii_domain,
        selector=ascii_selector,
        private_key_pem=_pem_of(private_key),
        dns_name=f"{ascii_selector}{_DOMAINKEY}{ascii_domain}",
        txt_record=_txt_record_for(private_key.public_key()),
    )


def key_file_name(selector: str, domain: str) -> str:
    return f"{selector}{_DOMAINKEY}{domain}{KEY_FILE_SUFFIX}"


def _load_rsa_key(pem: bytes, source: str) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise DkimKeyError(f"{source}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise DkimKeyError(f"{source}: DKIM keys must be RSA, not {type(key).__name__}")
    if not MIN_KEY_BITS <= key.key_size <= MAX_KEY_BITS:
        raise DkimKeyError(
            f"{source}: RSA key of {key.key_size} bits; DKIM needs {MIN_KEY_BITS} to {MAX_KEY_BITS}"
        )
    return key


@functools.lru_cache(maxsize=256)
def _cached_rsa_key(pem: bytes) -> rsa.RSAPrivateKey:
    # Loading checks the key's consistency, which costs more than a signature: once per key, not per message.
    return _load_rsa_key(pem, "DKIM private key")


class DkimKeyring:
    """The DKIM keys by signing domain: at most one key (one selector) per domain."""

    def __init__(self, keys: Iterable[DkimKey] = ()) -> None:
        self._keys: dict[str, DkimKey] = {}
        for key in keys:
            self.add(key)

    def add(self, key: DkimKey) -> None:
        domain = normalise_domain(key.domain)
        if domain in self._keys:
            raise DkimKeyError(
                f"two DKIM keys for {domain}: selectors {self._keys[domain].selector} and {key.selector}"
            )
        self._keys[domain] = DkimKey(
            domain=domain, selector=normalise_selector(key.selector), private_key_pem=key.private_key_pem
        )

    @classmethod
    def from_directory(cls, path: Path) -> DkimKeyring:
        """Every ``<selector>._domainkey.<domain>.pem`` in ``path``; other files are ignored.

        A missing directory is an empty keyring. A key file that cannot be read, is misnamed or does not
        hold an RSA private key raises DkimKeyError naming the file.
        """
        keyring = cls()
        if not path.exists():
            return keyring
        if not path.is_dir():
            raise DkimKeyError(f"{path}: the DKIM key directory is not a directory")
        sources: dict[str, Path] = {}
        for file in sorted(path.iterdir()):
            if not file.name.endswith(KEY_FILE_SUFFIX):
                continue
            selector, domain = _parse_key_file_name(file)
            try:
                pem = file.read_bytes()
            except OSError as exc:
                raise DkimKeyError(f"{file}: cannot read the DKIM key: {exc.strerror or exc}") from None
            # Stored in one canonical PEM form so that any PKCS#1 or PKCS#8 file, even with CRLF line ends,
            # is read alike by both signing paths.
            pem = _pem_of(_load_rsa_key(pem, str(file)))
            if domain in sources:
                raise DkimKeyError(f"{file}: a second DKIM key for {domain} (the other is {sources[domain]})")
            sources[domain] = file
            keyring.add(DkimKey(domain=domain, selector=selector, private_key_pem=pem))
        return keyring

    def save(self, key: GeneratedKey, directory: Path, *, overwrite: bool = False) -> Path:
        """Write the key to ``directory`` as ``<selector>._domainkey.<domain>.pem`` (mode 0600) and add it.

        Refuses (FileExistsError) to replace an existing file unless ``overwrite``.
        """
        domain = normalise_domain(key.domain)
        selector = normalise_selector(key.selector)
        _load_rsa_key(key.private_key_pem, f"the key for {domain}")
        existing = self._keys.get(domain)
        if existing is not None and not (overwrite and existing.selector == selector):
            raise DkimKeyError(
                f"the keyring already holds a DKIM key for {domain} (selector {existing.selector})"
            )
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        target = directory / key_file_name(selector, domain)
        # Written aside and moved into place, so a running worker never reads half a key.
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        _write_private(temporary, key.private_key_pem)
        try:
            if overwrite:
                os.replace(temporary, target)
            else:
                os.link(temporary, target)  # fails if the target exists: nothing is replaced
        except FileExistsError:
            raise FileExistsError(f"{target} already exists; not replacing a DKIM key") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
        self._keys[domain] = DkimKey(domain=domain, selector=selector, private_key_pem=key.private_key_pem)
        return target

    def key_for(self, domain: str) -> DkimKey | None:
        """The key for ``domain`` or else for its closest parent domain holding one (relaxed alignment)."""
        try:
            name = normalise_domain(domain)
        except ValueError:
            return None
        labels = name.split(".")
        for start in range(len(labels)):
            key = self._keys.get(".".join(labels[start:]))
            if key is not None:
                return key
        return None

    def domains(self) -> list[str]:
        return sorted(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


def _parse_key_file_name(file: Path) -> tuple[str, str]:
    stem = file.name[: -len(KEY_FILE_SUFFIX)]
    selector, found, domain = stem.partition(_DOMAINKEY)
    if not found:
        raise DkimKeyError(f"{file}: DKIM key files must be named <selector>._domainkey.<domain>.pem")
    try:
        return normalise_selector(selector), normalise_domain(domain)
    except ValueError as exc:
        raise DkimKeyError(f"{file}: {exc}") from None


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # the umask may have narrowed it further; never wider
        with os.fdopen(fd, "wb") as out:
            fd = -1
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            path.unlink()
        raise


# --- signing --------------------------------------------------------------------------------------------


class _CryptographySigner(dkim.DKIM):  # type: ignore[misc]
    """dkimpy's signer with the RSA operation done by OpenSSL through ``cryptography``.

    dkimpy's RSA is pure Python. Measured for a 2048-bit key and a 20 KB message: dkimpy alone takes about
    12 ms per signature (9 ms of it the RSA operation), this class about 2.4 ms (0.4 ms for the RSA
    operation, the rest dkimpy's canonicalisation). Everything but the RSA operation is dkimpy's code,
    and the tests verify both paths with ``dkim.verify``.

    ``gen_header`` mirrors ``dkim.DomainSigner.gen_header`` of dkimpy 1.1.8 for RSA, non-standardised
    headers; it is the only method overridden.
    """

    def __init__(self, message: bytes, signing_key: rsa.RSAPrivateKey, linesep: bytes) -> None:
        super().__init__(message, linesep=linesep)
        self.signing_key = signing_key

    def gen_header(
        self,
        fields: list[tuple[bytes, bytes]],
        include_headers: Sequence[bytes],
        canon_policy: Any,
        header_name: bytes,
        pk: object,
        standardize: bool = False,
    ) -> bytes:
        if standardize or self.signature_algorithm != b"rsa-sha256":
            raise dkim.ParameterError("only non-standardised rsa-sha256 signatures are supported")
        header_value = dkim.fold(b"; ".join(b"=".join(x) for x in fields), namelen=len(header_name))
        header_value = dkim.RE_BTAG.sub(b"\\1", header_value)
        header = (header_name, b" " + header_value)
        hasher = self.hasher()
        headers = canon_policy.canonicalize_headers(self.headers)
        self.signed_headers = dkim.hash_headers(
            hasher, canon_policy, headers, include_headers, header, dict(fields)
        )
        signature = self.signing_key.sign(hasher.digest(), padding.PKCS1v15(), Prehashed(hashes.SHA256()))
        idx = next(i for i, field in enumerate(fields) if field[0] == b"b")
        fields[idx] = (b"b", base64.b64encode(signature))
        header_value = b"; ".join(b"=".join(x) for x in fields) + self.linesep
        folded: bytes = dkim.fold(header_value, namelen=len(header_name), linesep=self.linesep)
        return folded


def sign(message: bytes, key: DkimKey, *, headers: Sequence[bytes] = DEFAULT_SIGNED_HEADERS) -> bytes:
    """``message`` with a DKIM-Signature header prepended (relaxed/relaxed, rsa-sha256, d= the key's domain).

    Of ``headers``, those present in the message are signed, every instance of each; From is always signed
    and listed once more than it occurs so that a From added later breaks the signature. The new header
    uses the message's own line ending (CRLF or LF). ValueError if the message has no From header or
    cannot be parsed.
    """
    return _signature_header(message, key, headers, use_cryptography=True) + message


def _signature_header(
    message: bytes, key: DkimKey, headers: Sequence[bytes], *, use_cryptography: bool
) -> bytes:
    first_line = message.split(b"\n", 1)[0]
    linesep = b"\r\n" if first_line.endswith(b"\r") else b"\n"
    signer: dkim.DKIM
    try:
        if use_cryptography:
            signer = _CryptographySigner(message, _cached_rsa_key(key.private_key_pem), linesep)
        else:
            signer = dkim.DKIM(message, linesep=linesep)
        wanted = {name.lower() for name in headers} | {b"from"}
        include = [name.lower() for name, _ in signer.headers if name.lower() in wanted]
        if b"from" not in include:
            raise ValueError("cannot DKIM-sign a message without a From header")
        include.append(b"from")
        result: bytes = signer.sign(
            key.selector.encode("ascii"),
            key.domain.encode("ascii"),
            key.private_key_pem,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=include,
            length=False,
        )
    except dkim.DKIMException as exc:
        raise ValueError(f"cannot DKIM-sign the message: {exc}") from None
    return result
