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


class EnrolmentCheckPublic(BaseModel):
    usable: bool = Field(description="Whether this face meets the enrolment quality "
                         "minimums (quality.* in the configuration).")
    shortfalls: list[str] = Field(description="Why not, one reason per minimum missed "
                                  "(the words enrolment refuses the image with).",
                                  examples=[["yaw -88.00 (needs within +-45.0 deg)"]])


class DetectedFacePublic(FacePublic):
    enrolment: EnrolmentCheckPublic


class DetectPublic(BaseModel):
    image: str
    faces: list[DetectedFacePublic]


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
