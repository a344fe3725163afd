"""FrameSampler: which media times are analysed, whatever rate the source delivers."""

from __future__ import annotations

import pytest

from frvs.core.errors import InvalidRecordError
from frvs.video.sampling import FrameSampler


def kept(fps: float | None, timestamps: list[float]) -> list[float]:
    sampler = FrameSampler(fps)
    return [t for t in timestamps if sampler.keep(t)]


NTSC = [i / 29.97 for i in range(60)]  # two seconds of a 29.97 fps camera


@pytest.mark.parametrize(
    ("fps", "timestamps", "expected"),
    [
        pytest.param(None, [0.0, 0.01, 0.02], [0.0, 0.01, 0.02], id="none-keeps-every-frame"),
        pytest.param(5.0, [0.0, 0.1, 0.2, 0.3, 0.4], [0.0, 0.2, 0.4], id="10fps-to-5"),
        pytest.param(2.0, [0.0, 0.3, 0.6, 0.9, 1.2], [0.0, 0.6, 1.2], id="grid-not-period"),
        # A gap longer than a period restarts the grid at the next frame.
        pytest.param(5.0, [0.0, 0.2, 3.05, 3.1, 3.25], [0.0, 0.2, 3.05, 3.25], id="gap"),
        # A reconnected stream restarts its clock at 0: sampling goes on from there.
        pytest.param(5.0, [10.0, 10.2, 0.0, 0.1, 0.2], [10.0, 10.2, 0.0, 0.2], id="time-back"),
    ],
)
def test_sampler_keeps_the_grid(fps: float | None, timestamps: list[float],
                                expected: list[float]) -> None:
    assert kept(fps, timestamps) == expected


def test_ntsc_at_5fps_keeps_exactly_5_a_second() -> None:
    assert len(kept(5.0, NTSC)) == 10


@pytest.mark.parametrize("fps", [0.0, -1.0])
def test_sampler_refuses_non_positive_rates(fps: float) -> None:
    with pytest.raises(InvalidRecordError, match="must be > 0"):
        FrameSampler(fps)
