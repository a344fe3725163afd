"""Response models of the public API (they also document the OpenAPI schema)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Pose(BaseModel):
    yaw: float
    pitch: float
    roll: float


class QualityPublic(BaseModel):
    detector_score: float
    face_size_px: float
    inter_eye_px: float
    sharpness: float
    brightness: float
    contrast: float
    pose: Pose
    overall: float = Field(ge=0, le=1)


class FacePublic(BaseModel):
    box: list[float] = Field(
        description="x, y, width, height in pixels", examples=[[10, 20, 80, 96]]
    )
    landmarks: list[list[float]] = Field(description="right eye, left eye, nose, mouth right, "
                                         "mouth left as [x, y]")
    score: float
    quality: QualityPublic


class DetectPublic(BaseModel):
    image: str
    faces: list[FacePublic]


class ProbeFacePublic(FacePublic):
    image: str
    faces_found: int
    note: str | None = None


class VerifyPublic(BaseModel):
    score: float = Field(examples=[0.71])
    threshold: float = Field(examples=[0.363])
    same: bool
    pack: str = Field(examples=["yunet_sface"])
    faces: list[ProbeFacePublic]


class Health(BaseModel):
    status: str = Field(examples=["ok"])
    version: str
