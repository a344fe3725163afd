"""What a camera source or a webhook URL may reach: the source policy.

A camera source is a URL or a path FFmpeg opens on the server, so whoever sets one could
make the service read its own files or probe services behind it (server-side request
forgery). The policy is checked when a source is set (``CameraService.add``/``update``)
and again each time it is opened (``open_source``), with the *origin* of the request:

- **schemes**: ``rtsp``, ``rtsps``, ``http``, ``https``, a local V4L2 device
  (``/dev/videoN``), and files and folders; nothing else (no ``concat:``, ``pipe:``,
  ``udp://`` ...);
- **files and folders** set over the API or the console (``REMOTE``) only under
  ``video.media_roots`` (none by default); the machine's user at the command line
  (``LOCAL``) and the service opening a registered camera (``SERVICE``) may name any;
  never the data directory or the SQLite store, whoever asks (symlinks and ``..``
  resolved);
- **hosts** must resolve only to public addresses (every address a name resolves to is
  checked) unless ``video.allow_private_sources`` is on: loopback, link-local, private,
  shared, reserved and multicast ranges are refused.

Webhook URLs follow the host rule, with ``http`` and ``https`` only.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from urllib.parse import unquote, urlsplit

from frvs.core.caller import AuditContext
from frvs.core.errors import InvalidInputError

STREAM_SCHEMES = frozenset({"rtsp", "rtsps", "http", "https"})
WEBHOOK_SCHEMES = frozenset({"http", "https"})
DEVICE = re.compile(r"/dev/video\d{1,3}")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_ALLOWED = "rtsp://, rtsps://, http://, https://, /dev/videoN, a file or a folder"
EDGE_SOURCE = "edge"
"""The source of a camera an edge node runs ('frvs edge run'): the centre binds it to
galleries and takes the node's reports for it, and never opens it itself."""

Resolver = Callable[[str], Sequence[str]]
"""The addresses a host name resolves to (``OSError`` when it does not resolve)."""


def resolve_host(host: str) -> list[str]:
    """Every address ``host`` resolves to, as the system resolver (and FFmpeg) sees it."""
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    return sorted({str(info[4][0]) for info in infos})


def describe(url: str) -> str:
    """The URL with any password hidden, for logs, status and the audit trail."""
    return re.sub(r"(://[^:/@]+):[^@/]+@", r"\1:***@", url)


class SourceRefusedError(InvalidInputError):
    """The source policy refuses a camera source or webhook URL."""

    code = "source_refused"


class SourceOrigin(StrEnum):
    """Who names a source, which decides what it may name."""

    REMOTE = "remote"
    """An API key, the web console included: files only under the media roots."""
    LOCAL = "local"
    """The machine's user at the command line ('frvs watch', 'frvs camera add')."""
    SERVICE = "service"
    """FRVS opening a registered camera: the source was checked when it was set."""

    @classmethod
    def of(cls, caller: AuditContext) -> SourceOrigin:
        """The origin of a use case's caller: a key is remote, the command line local
        (even with a key in FRVS_API_KEY), FRVS itself the service."""
        kind = caller.actor.kind
        return cls.REMOTE if kind == "key" else cls.LOCAL if kind == "cli" else cls.SERVICE


class SourceKind(StrEnum):
    STREAM = "stream"
    DEVICE = "device"
    PATH = "path"
    EDGE = "edge"


@dataclass(frozen=True, slots=True)
class CheckedSource:
    """A source the policy let through: a stream URL, a device, or a local path with
    symlinks and ``..`` resolved (what is opened, so a link swapped afterwards is not
    followed)."""

    kind: SourceKind
    location: str
    scheme: str | None = None


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _address_kind(address: str) -> str | None:
    """Why an address is not public (``loopback``, ``private`` ...), or None if it is."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "unparsable"
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:  # an IPv4 address in IPv6 clothing is judged as IPv4
            return _address_kind(str(embedded))
    for kind in ("loopback", "link_local", "multicast", "unspecified", "private",
                 "reserved"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if ip.is_global else "non-public"


@dataclass(frozen=True, slots=True)
class SourcePolicy:
    """The deployment's rules for camera sources and webhook URLs.

    ``protected`` are the paths no source may name (the data directory, the SQLite
    store and its ``-wal``/``-shm`` files); ``media_roots`` the folders API callers may
    name files and folders under; ``allow_private`` lets hosts resolve to loopback,
    link-local and private addresses (cameras on a local network, tests on loopback).
    The default policy protects nothing and allows no private host.
    """

    protected: tuple[Path, ...] = ()
    media_roots: tuple[Path, ...] = ()
    allow_private: bool = False
    resolver: Resolver = field(default=resolve_host, repr=False, compare=False)

    def in_media_root(self, path: Path) -> bool:
        """Whether ``path`` (resolved) lies under one of the media roots."""
        return any(_within(path, root.resolve()) for root in self.media_roots)

    def check(self, url: str, origin: SourceOrigin) -> CheckedSource:
        """The source ``url`` as it may be opened for ``origin``; ``SourceRefusedError``
        with the reason otherwise (never whether a port is open or what a file holds)."""
        if not url or any(ord(c) < 32 or ord(c) == 127 for c in url):
            raise SourceRefusedError("a camera source must be non-empty, without control "
                                     "characters")
        if DEVICE.fullmatch(url):
            return CheckedSource(SourceKind.DEVICE, url)
        if url == EDGE_SOURCE:
            return CheckedSource(SourceKind.EDGE, url)
        scheme = _SCHEME.match(url)
        if scheme is None:
            return self._check_path(url, origin)
        name = scheme.group(1).lower()
        if name == "file":
            rest = url[scheme.end():]
            return self._check_path(unquote(rest[2:] if rest.startswith("//") else rest),
                                    origin)
        if name not in STREAM_SCHEMES:
            raise SourceRefusedError(f"camera sources may be {_ALLOWED}; not {name}:")
        self._check_url(url, name)
        return CheckedSource(SourceKind.STREAM, url, name)

    def check_webhook(self, url: str) -> str:
        """A webhook URL: ``http`` or ``https`` to a host the policy allows."""
        self.webhook_addresses(url)
        return url

    def webhook_addresses(self, url: str) -> list[str]:
        """``check_webhook``, and the addresses its host resolved to and passed: the
        request must connect to one of these, never to a second resolution (a name
        that answers a public address to the check and 127.0.0.1 to the connection,
        DNS rebinding, would otherwise reach the loopback)."""
        scheme = _SCHEME.match(url)
        name = scheme.group(1).lower() if scheme else ""
        if name not in WEBHOOK_SCHEMES or any(ord(c) < 32 or ord(c) == 127 for c in url):
            raise SourceRefusedError(f"webhook {describe(url)}: only http:// and https:// "
                                     "URLs without control characters")
        return self._check_url(url, name)

    def is_protected(self, path: Path) -> bool:
        """Whether ``path`` (resolved) is, or is inside, a protected path, or is a
        protected file's ``-wal``/``-shm``/``-journal`` companion."""
        for protected in self.protected:
            root = protected.resolve()
            if _within(path, root) or (path.parent == root.parent and path.name in {
                    root.name + suffix for suffix in ("-wal", "-shm", "-journal")}):
                return True
        return False

    def _check_path(self, raw: str, origin: SourceOrigin) -> CheckedSource:
        try:
            path = Path(raw).resolve()
        except (OSError, RuntimeError, ValueError) as exc:  # a symlink loop, a NUL
            raise SourceRefusedError(f"camera source {raw!r} is not a usable path") from exc
        if self.is_protected(path):
            raise SourceRefusedError(f"camera source {raw!r} is inside FRVS's own data "
                                     "(the data directory or the store); no camera may "
                                     "read it")
        if origin is SourceOrigin.REMOTE and not any(
                _within(path, root.resolve()) for root in self.media_roots):
            where = ("under video.media_roots" if self.media_roots else
                     "only under video.media_roots, and none is configured")
            raise SourceRefusedError(f"camera source {raw!r}: files and folders set "
                                     f"through the API may be named {where}; streams "
                                     "may be rtsp(s):// or http(s):// URLs")
        return CheckedSource(SourceKind.PATH, str(path))

    def _check_url(self, url: str, scheme: str) -> list[str]:
        shown = describe(url)
        if any(c.isspace() for c in url):
            raise SourceRefusedError(f"{shown}: a URL has no spaces")
        try:
            parts = urlsplit(url)
            host = parts.hostname
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError as exc:
            raise SourceRefusedError(f"{shown} is not a valid {scheme} URL") from exc
        if not host:
            raise SourceRefusedError(f"{shown} names no host")
        try:
            addresses = list(self.resolver(host))
        except (OSError, UnicodeError) as exc:
            raise SourceRefusedError(f"{shown}: host {host!r} does not resolve") from exc
        if not addresses:
            raise SourceRefusedError(f"{shown}: host {host!r} does not resolve")
        if self.allow_private:
            return addresses
        for address in addresses:
            kind = _address_kind(address)
            if kind is not None:
                raise SourceRefusedError(
                    f"{shown}: host {host!r} resolves to {address} ({kind}); loopback, "
                    "link-local and private hosts are refused unless "
                    "video.allow_private_sources is on")
        return addresses
