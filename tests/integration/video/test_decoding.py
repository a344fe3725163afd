"""What a camera decodes between analysed frames: with one decoder thread, frames nothing
refers to are not decoded at all, and the analysed frames stay exactly the same."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest

from frvs.video.models import Frame
from frvs.video.sampling import FrameSampler
from frvs.video.sources import AvSource, SourceOptions, open_source


def _clip(folder: Path, data_dir: Path, b_frames: int) -> Path:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("ffmpeg is not installed")
    out = folder / f"clip-b{b_frames}.mp4"
    subprocess.run([ffmpeg, "-loglevel", "error", "-y", "-i",
                    str(data_dir / "video" / "short_hamilton_clip.mp4"), "-an", "-t", "3",
                    "-vf", "scale=320:180", "-c:v", "libx264", "-preset", "veryfast",
                    "-g", "30", "-bf", str(b_frames), "-x264-params", "b-pyramid=none",
                    str(out)], check=True)
    return out


def _sampled(path: Path, threads: int) -> tuple[list[Frame], int]:
    """The frames a 5 fps sampler keeps, and how many frames were decoded."""
    source = open_source(str(path), "cam", SourceOptions(decoder_threads=threads))
    assert isinstance(source, AvSource)
    sampler = FrameSampler(5.0)
    frames = []
    while (frame := source.read(sampler.keep)) is not None:
        frames.append(frame)
    decoded = frames[-1].index + 1
    source.close()
    return frames, decoded


@pytest.mark.parametrize("b_frames", [0, 2])
def test_one_decoder_thread_passes_over_unreferenced_frames(tmp_path: Path, data_dir: Path,
                                                            b_frames: int) -> None:
    clip = _clip(tmp_path, data_dir, b_frames)
    every, all_decoded = _sampled(clip, threads=0)
    lean, lean_decoded = _sampled(clip, threads=1)
    assert [f.timestamp for f in lean] == [f.timestamp for f in every]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(lean, every, strict=True))
    if b_frames:
        assert lean_decoded < all_decoded  # B-frames between samples never decoded
    else:
        assert lean_decoded == all_decoded  # I- and P-frames only: every one is needed


def test_a_stream_that_changes_size_is_converted_at_each_size(tmp_path: Path,
                                                              data_dir: Path) -> None:
    """One BGR converter serves a source for its whole life: when a camera's stream
    changes resolution mid-way, frames come at the new size, the same pixels as PyAV's
    own conversion of each frame."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("ffmpeg is not installed")
    parts = []
    for size in ("320:180", "160:120"):
        part = tmp_path / f"part-{size.replace(':', 'x')}.ts"
        subprocess.run([ffmpeg, "-loglevel", "error", "-y", "-i",
                        str(data_dir / "video" / "short_hamilton_clip.mp4"), "-an", "-t", "1",
                        "-vf", f"scale={size}", "-c:v", "libx264", "-bf", "0", str(part)],
                       check=True)
        parts.append(part.read_bytes())
    joined = tmp_path / "joined.ts"
    joined.write_bytes(b"".join(parts))  # MPEG-TS segments concatenate into one stream
    source = open_source(str(joined), "cam")
    frames = []
    while (frame := source.read()) is not None:
        frames.append(frame.image)
    source.close()
    assert {f.shape for f in frames} == {(180, 320, 3), (120, 160, 3)}
    assert frames[0].shape == (180, 320, 3) and frames[-1].shape == (120, 160, 3)
    with av.open(str(joined)) as container:
        reference = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    assert len(reference) == len(frames)
    assert all(np.array_equal(a, b) for a, b in zip(frames, reference, strict=True))
