"""The source policy on its own, table-driven: which camera sources each origin may name
(issue 12, findings 1 and 2). Host names resolve through a stub resolver, so the table
says what every name resolves to; one case uses the system's own 'localhost'."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from contextlib import nullcontext as allowed
from pathlib import Path

import pytest

from frvs.video.source_policy import (
    SourceKind,
    SourceOrigin,
    SourcePolicy,
    SourceRefusedError,
    resolve_host,
)

REMOTE, LOCAL, SERVICE = SourceOrigin.REMOTE, SourceOrigin.LOCAL, SourceOrigin.SERVICE
DNS = {"cam.example.com": ["93.184.216.34"], "rebind.example.com": ["93.184.216.34", "127.0.0.1"],
       "lan-cam.example.com": ["192.168.1.20"], "v6.example.com": ["::1"],
       "mapped.example.com": ["::ffff:10.0.0.1"], "meta.example.com": ["169.254.169.254"]}


def _resolve(host: str) -> Sequence[str]:
    """The table's names; addresses (in any spelling) through the system resolver."""
    if host in DNS:
        return DNS[host]
    if host[0].isdigit() or ":" in host:
        return resolve_host(host)
    raise OSError(f"{host} does not resolve")


def refused(reason: str) -> AbstractContextManager[object]:
    return pytest.raises(SourceRefusedError, match=reason)


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    """A data directory with its store, a media root with a clip, links out of it."""
    data, media, other = tmp_path / "data", tmp_path / "media", tmp_path / "other"
    for folder in (data / "media" / "crops", media / "cam1", other):
        folder.mkdir(parents=True)
    for file in (data / "frvs.db", data / "frvs.db-wal", media / "clip.mp4", other / "x.mp4"):
        file.write_bytes(b"x")
    (media / "db-link.mp4").symlink_to(data / "frvs.db")
    (media / "crops-link").symlink_to(data / "media" / "crops")
    (media / "out-link.mp4").symlink_to(other / "x.mp4")
    (media / "data-link").symlink_to(data)
    return {"data": data, "media": media, "other": other, "root": tmp_path}


def _policy(tree: dict[str, Path], allow_private: bool = False) -> SourcePolicy:
    return SourcePolicy((tree["data"],), (tree["media"],), allow_private, _resolve)


PATHS = [  # (source, with {root} for the temporary folder, origin, expectation)
    ("{root}/data/frvs.db", LOCAL, refused("FRVS's own data")),
    ("{root}/data/frvs.db", SERVICE, refused("FRVS's own data")),
    ("{root}/data/frvs.db-wal", LOCAL, refused("FRVS's own data")),
    ("{root}/data", LOCAL, refused("FRVS's own data")),
    ("{root}/data/media/crops", REMOTE, refused("FRVS's own data")),
    ("file://{root}/data/frvs.db", LOCAL, refused("FRVS's own data")),
    ("{root}/media/db-link.mp4", REMOTE, refused("FRVS's own data")),
    ("{root}/media/db-link.mp4", LOCAL, refused("FRVS's own data")),
    ("{root}/media/crops-link", SERVICE, refused("FRVS's own data")),
    ("{root}/media/data-link/frvs.db", LOCAL, refused("FRVS's own data")),
    ("{root}/media/../data/frvs.db", LOCAL, refused("FRVS's own data")),
    ("{root}/media/cam1/../../data/./frvs.db", REMOTE, refused("FRVS's own data")),
    ("/etc/passwd", REMOTE, refused("media_roots")),
    ("file:///etc/passwd", REMOTE, refused("media_roots")),
    ("{root}/other/x.mp4", REMOTE, refused("media_roots")),
    ("{root}/media/out-link.mp4", REMOTE, refused("media_roots")),
    ("{root}/media/../other/x.mp4", REMOTE, refused("media_roots")),
    ("{root}/media/clip.mp4", REMOTE, allowed()),
    ("{root}/media/cam1", REMOTE, allowed()),
    ("{root}/media/not-yet-there.mp4", REMOTE, allowed()),
    ("/etc/passwd", LOCAL, allowed()),  # the machine's user may read it anyway
    ("{root}/other/x.mp4", SERVICE, allowed()),
    ("/dev/video0", REMOTE, allowed()),
]


@pytest.mark.parametrize(("source", "origin", "expectation"), PATHS)
def test_files_and_folders(tree: dict[str, Path], source: str, origin: SourceOrigin,
                           expectation: AbstractContextManager[object]) -> None:
    with expectation:
        checked = _policy(tree).check(source.format(root=tree["root"]), origin)
        assert checked.kind in (SourceKind.PATH, SourceKind.DEVICE)
        if checked.kind is SourceKind.PATH:  # what is opened: links and '..' resolved
            assert Path(checked.location) == Path(checked.location).resolve()


STREAMS = [  # (source, allow_private_sources, expectation)
    ("rtsp://127.0.0.1:8554/clip", False, refused(r"\(loopback\)")),
    ("rtsp://127.0.0.1:8554/clip", True, allowed()),
    ("http://127.0.0.1:18432/secret.nfo#.nfo", False, refused(r"\(loopback\)")),
    ("HTTP://127.0.0.1/x", False, refused(r"\(loopback\)")),
    ("http://[::1]:80/x", False, refused(r"\(loopback\)")),
    ("http://v6.example.com/x", False, refused(r"\(loopback\)")),
    ("http://2130706433/x", False, refused(r"\(loopback\)")),  # 127.0.0.1 as one number
    ("rtsp://rebind.example.com/x", False, refused(r"\(loopback\)")),  # every address counts
    ("rtsp://lan-cam.example.com/x", False, refused(r"\(private\)")),
    ("rtsp://lan-cam.example.com/x", True, allowed()),
    ("http://mapped.example.com/x", False, refused(r"\(private\)")),
    ("http://meta.example.com/latest/meta-data", False, refused(r"\(link-local\)")),
    ("http://0.0.0.0:8000/", False, refused(r"\(unspecified\)")),
    ("rtsp://admin:pw@cam.example.com:554/stream", False, allowed()),
    ("rtsps://cam.example.com/stream", False, allowed()),
    ("https://cam.example.com/mjpeg", False, allowed()),
    ("rtsp://nowhere.example.com/x", False, refused("does not resolve")),
    ("rtsp:///x", False, refused("names no host")),
    ("http://cam.example.com:99999/x", False, refused("not a valid")),
    ("http://cam.example.com/a b", False, refused("no spaces")),
    ("rtmp://cam.example.com/live", False, refused("not rtmp:")),
    ("udp://239.0.0.1:1234", True, refused("not udp:")),
    ("concat:/etc/passwd|/etc/hosts", True, refused("not concat:")),
    ("pipe:0", True, refused("not pipe:")),
    ("tty:/etc/passwd", True, refused("not tty:")),
    ("hls+http://cam.example.com/x.m3u8", True, refused("not hls")),
    ("", True, refused("non-empty")),
    ("http://cam.example.com/x\r\nHost: evil", True, refused("control characters")),
]


@pytest.mark.parametrize(("source", "allow_private", "expectation"), STREAMS)
def test_streams(tree: dict[str, Path], source: str, allow_private: bool,
                 expectation: AbstractContextManager[object]) -> None:
    with expectation:
        checked = _policy(tree, allow_private).check(source, REMOTE)
        assert checked.kind is SourceKind.STREAM and checked.location == source


def test_a_name_the_system_resolves_to_loopback_is_refused() -> None:
    with refused(r"'localhost' resolves to (127\.0\.0\.1|::1) \(loopback\)"):
        SourcePolicy().check("rtsp://localhost:8554/clip", LOCAL)


def test_refusals_hide_passwords() -> None:
    with pytest.raises(SourceRefusedError) as refusal:
        SourcePolicy().check("rtsp://admin:hunter2@127.0.0.1/x", REMOTE)
    assert "hunter2" not in refusal.value.message and "admin:***@" in refusal.value.message


@pytest.mark.parametrize(("url", "allow_private", "expectation"), [
    ("http://127.0.0.1:9000/hook", False, refused(r"\(loopback\)")),
    ("http://localhost:9000/hook", False, refused(r"\(loopback\)")),
    ("https://10.1.2.3/hook", False, refused(r"\(private\)")),
    ("http://127.0.0.1:9000/hook", True, allowed()),
    ("https://cam.example.com/hook", False, allowed()),
    ("rtsp://cam.example.com/hook", True, refused("only http")),
    ("file:///etc/passwd", True, refused("only http")),
])
def test_webhook_urls(url: str, allow_private: bool,
                      expectation: AbstractContextManager[object]) -> None:
    policy = SourcePolicy(allow_private=allow_private,
                          resolver=lambda h: ["127.0.0.1"] if h == "localhost" else _resolve(h))
    with expectation:
        assert policy.check_webhook(url) == url
