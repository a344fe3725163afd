"""Inputs of identity-check tests, made from the real photos and the real clip in
``../shared/data`` (nothing is copied into the repository):

- an ID card: a grey portrait cut from a real photo on a plain card, with the smaller,
  faded "ghost" copy of it that many identity documents print beside the main one;
- live captures: frames of the real clip where Lin-Manuel Miranda turns his head
  (3.70-7.85 s of ``short_hamilton_clip.mp4``: frontal, to his right by about 50 degrees,
  back past frontal to his left by about 13 degrees, then to his right again), cut with
  FFmpeg as JPEG frames, an MP4 or a Y4M file for Chromium's fake camera;
- attacks: one still frame repeated, and a real photo moved around as a flat picture
  (perspective warps of the photo plane: shifted, tilted, turned and brought closer).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from frvs.app import Application

Image = npt.NDArray[np.uint8]

TURN_START, TURN_END = 3.70, 7.85
"""The span of the clip where one face (Lin-Manuel Miranda) turns right, left, right."""
CARD_BG = (214, 226, 232)


def clip(data_dir: Path) -> Path:
    return data_dir / "video" / "short_hamilton_clip.mp4"


def read(path: Path) -> Image:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, path
    return np.asarray(image, np.uint8)


def jpeg(image: Image) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    return bytes(data.tobytes())


def portrait(app: Application, photo: Path) -> Image:
    """A passport-style crop (3:4) around the largest face of ``photo``."""
    image = read(photo)
    faces = app.engine.detect(image)
    assert faces, f"no face in {photo}"
    b = faces[0].detection.box
    cx, cy = b.x + b.w / 2, b.y + b.h / 2
    half_w = b.w * 0.95
    top, bottom = cy - b.h * 1.05, cy + b.h * 1.15
    x0, x1 = max(0, int(cx - half_w)), min(image.shape[1], int(cx + half_w))
    y0, y1 = max(0, int(top)), min(image.shape[0], int(bottom))
    return np.asarray(cv2.resize(image[y0:y1, x0:x1], (240, 300),
                                 interpolation=cv2.INTER_AREA), np.uint8)


def _card() -> Image:
    card = np.full((540, 856, 3), CARD_BG, np.uint8)
    cv2.rectangle(card, (10, 10), (845, 529), (150, 150, 150), 2)
    cv2.putText(card, "IDENTITY CARD", (300, 70), cv2.FONT_HERSHEY_SIMPLEX, 1.3,
                (90, 60, 40), 3)
    for i, line in enumerate(("SURNAME  SPECIMEN", "GIVEN NAMES  TEST", "BORN  01.01.1980",
                              "EXPIRES  01.01.2035")):
        cv2.putText(card, line, (320, 170 + 55 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.9,
                    (60, 60, 60), 2)
    return card


def id_card(face: Image, ghost: bool = True) -> bytes:
    """A card with ``face`` as its grey main portrait and, with ``ghost``, a faded copy
    at 40% of its size (16% of its area) at the bottom right."""
    card = _card()
    grey = cv2.cvtColor(cv2.cvtColor(face, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    card[130:430, 40:280] = grey
    if ghost:
        small = cv2.resize(grey, (96, 120), interpolation=cv2.INTER_AREA)
        region = card[390:510, 720:816].astype(np.float32)
        card[390:510, 720:816] = (0.6 * small + 0.4 * region).astype(np.uint8)
    return jpeg(card)


def two_portrait_card(a: Image, b: Image) -> bytes:
    """A card with two portraits of the same size: ambiguous, refused."""
    card = _card()
    card[130:430, 40:280] = a
    card[130:430, 580:820] = b
    return jpeg(card)


def blank_card() -> bytes:
    """A card without any portrait: no face in the document."""
    return jpeg(_card())


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True, timeout=120)


def turn_frames(data_dir: Path, out: Path, fps: float = 5.0) -> list[Path]:
    """JPEG frames of the head turn at ``fps`` (21 at 5 fps)."""
    out.mkdir(parents=True, exist_ok=True)
    ffmpeg("-ss", f"{TURN_START}", "-to", f"{TURN_END}", "-i", str(clip(data_dir)),
           "-vf", f"fps={fps}", "-q:v", "3", str(out / "f%03d.jpg"))
    return sorted(out.glob("f*.jpg"))


def turn_video(data_dir: Path, out: Path) -> Path:
    """The head turn as an MP4 file (what 'frvs check' takes as a video)."""
    ffmpeg("-ss", f"{TURN_START}", "-to", f"{TURN_END}", "-i", str(clip(data_dir)), "-an",
           str(out))
    return out


def fake_camera(data_dir: Path, out: Path, still: bool = False) -> Path:
    """A Y4M file for Chromium's fake camera: the head turn played twice (Chromium
    loops the file, so any few seconds of it hold a turn each way), or, with ``still``,
    the turn's first frame held for four seconds."""
    source = ["-ss", f"{TURN_START}", "-i", str(clip(data_dir))]
    if still:
        ffmpeg(*source, "-frames:v", "1", str(out.with_suffix(".png")))
        ffmpeg("-loop", "1", "-t", "4", "-i", str(out.with_suffix(".png")), "-r", "15",
               "-pix_fmt", "yuv420p", str(out))
        return out
    ffmpeg(*source, "-t", f"{TURN_END - TURN_START}", "-filter_complex",
           "[0:v]split[a][b];[a][b]concat=n=2:v=1,fps=15", "-pix_fmt", "yuv420p", str(out))
    return out


def flat_moves(photo: Image, count: int = 10) -> list[bytes]:
    """``photo`` as a printed picture held up and moved: its plane shifted, turned
    about the vertical axis by up to 40 degrees either way, tilted and brought closer."""
    h, w = photo.shape[:2]
    scale = 640 / max(h, w)
    photo = np.asarray(cv2.resize(photo, (round(w * scale), round(h * scale))), np.uint8)
    h, w = photo.shape[:2]
    frames = []
    focal = 900.0
    for i in range(count):
        t = i / max(count - 1, 1)
        yaw = np.radians(-40 + 80 * t)
        pitch = np.radians(15 * np.sin(2 * np.pi * t))
        zoom = 1.0 + 0.3 * t
        shift = (60 * np.sin(2 * np.pi * t), 30 * t)
        corners = np.array([[-w / 2, -h / 2, 0], [w / 2, -h / 2, 0], [w / 2, h / 2, 0],
                            [-w / 2, h / 2, 0]], np.float64)
        ry = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
        rx = np.array([[1, 0, 0], [0, np.cos(pitch), -np.sin(pitch)],
                       [0, np.sin(pitch), np.cos(pitch)]])
        placed = corners @ (rx @ ry).T + np.array([0, 0, focal * 1.4 / zoom])
        projected = placed[:, :2] * focal / placed[:, 2:3] + np.array(
            [w / 2 + shift[0], h / 2 + shift[1]])
        source = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
        matrix = cv2.getPerspectiveTransform(source, projected.astype(np.float32))
        frames.append(jpeg(np.asarray(cv2.warpPerspective(
            photo, matrix, (w, h), borderValue=(40, 40, 40)), np.uint8)))
    return frames


def answer_twice_at_once(app: Any, document: Any, frames: Any, challenge_id: int) -> list[str]:
    """Two threads answer one issued challenge at the same moment: the sorted outcomes
    ('checked' or 'conflict')."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from callers import LOCAL

    from frvs.core.errors import ConflictError

    start = threading.Barrier(2)

    def answer() -> str:
        start.wait()
        try:
            app.checks.run(LOCAL, document, frames, (), challenge_id=challenge_id)
        except ConflictError:
            return "conflict"
        return "checked"

    with ThreadPoolExecutor(2) as pool:
        return sorted(pool.map(lambda _: answer(), range(2)))
