"""YuNet + SFace on ONNX Runtime (placeholder until the ORT runtime lands)."""

from __future__ import annotations


def preferred_on_this_machine() -> bool:
    """Whether 'auto' should pick ONNX Runtime."""
    return False
