"""The JSON bodies of ``insvp serve``'s API, as pydantic models: they make its OpenAPI schema (``/openapi.json``)."""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, Field


class Health(BaseModel):
    status: str = Field(description="ok while the server answers")
    tasks: int = Field(description="tasks served")
    pending: int = Field(description="images and Grad-CAM requests queued or running in the model worker")


class Backbone(BaseModel):
    name: str = Field(description="the timm model")
    weights: str = Field(description="where its weights came from: timm, none or a file")
    fingerprint: str | None = Field(description="hash of its first and last frozen tensors (none: all of it trained)")
    shared: bool = Field(description="whether other tasks use the same backbone in memory")
    shared_with: list[str] = Field(description="those tasks")


class TaskInfo(BaseModel):
    name: str
    method: str = Field(description="the method's registered name (insvp, vpt, linear, ...)")
    classes: list[str] = Field(description="class names by label")
    checkpoint: str
    trainable_params: int = Field(description="parameters that trained, head included")
    extra_params: int = Field(description="trainable parameters without the head")
    backbone: Backbone


class Tasks(BaseModel):
    tasks: list[TaskInfo]


class Explain(str, Enum):
    gradcam = "gradcam"


class GradCAM(BaseModel):
    class_: str = Field(alias="class", description="the explained class: the most probable one")
    probability: float
    heatmap_png: str = Field(description="the map as a grey PNG (0..255 for 0..1), base64")
    overlay_png: str = Field(description="the map in the jet colours over the image as the model sees it, PNG, base64")


class Prediction(BaseModel):
    file: str = Field(description="the uploaded file's name")
    classes: list[str] = Field(description="the top-k classes, most probable first")
    probabilities: list[float] = Field(description="their softmax probabilities, as insvp predict gives them")
    gradcam: GradCAM | None = None


class Predictions(BaseModel):
    task: str
    predictions: list[Prediction] = Field(description="one per uploaded file, in order")


class Problem(BaseModel):
    detail: str = Field(description="what was wrong, in one line")
