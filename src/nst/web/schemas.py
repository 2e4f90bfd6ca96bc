"""The typed responses of the JSON API: what ``app.js`` and ``explore.js`` rely on.

Every route declares one of these as its response model, so the OpenAPI document
(``/api/openapi.json``) describes the API exactly and a field that changes shape fails
on the server, not in a page.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

Number = int | float


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JobInputs(_Model):
    content: str | None
    styles: list[str]
    mask: str | None


class JobView(_Model):
    """One job as the pages show it."""

    id: str
    kind: str  # stylize | visualize
    state: str  # queued | running | done | cancelled | failed
    created: float
    started_at: float | None
    finished_at: float | None
    elapsed: float | None
    position: int  # place in the queue (1 = next), 0 when not queued
    wait: float | None = None  # queued: about how many seconds until it starts
    error: str | None
    losses: list[float]  # the loss curve, thinned to at most 300 points
    params: dict[str, Any]  # the job's settings as shown (no server-only option)
    progress: dict[str, Any]  # done, total, fraction, eta, seed, ... of the last step
    inputs: JobInputs
    result: str | None  # URL of the result
    preview: str | None  # URL of the latest preview
    continuable: bool = False  # interrupted with a checkpoint: POST .../continue goes on


class OptionSchema(_Model):
    """One option of a form (from its declaration; caps are this server's)."""

    name: str
    kind: str
    default: Any
    help: str
    label: str
    panel: str
    web: str
    choices: list[str] | None
    min: Number | None
    max: Number | None
    min_exclusive: bool
    nullable: bool
    unit: str  # of its numbers ("px"), or ""


class Limits(_Model):
    max_size: int
    max_iterations: int
    max_styles: int
    max_body: int
    max_pixels: int


class ConfigView(_Model):
    fields: list[OptionSchema]
    limits: Limits
    init: list[str]
    presets: dict[str, dict[str, Any]]  # preset -> option -> value (what a choice sets)
    #: option -> value -> option -> value: what a choice brings when the other is left as it
    #: was (mrf's style layers)
    implied: dict[str, dict[str, dict[str, Any]]]
    ended: list[str]  # the states a job ends in (no more events come)


class SessionView(_Model):
    """Whether this server asks for a token (the pages show Sign out)."""

    signin: bool


class FormView(_Model):
    fields: list[OptionSchema]


class BuiltinView(_Model):
    name: str  # builtin:NAME
    kind: str  # photo | painting
    title: str
    url: str
    thumb: str  # a small JPEG as a data URL


class Estimate(_Model):
    seconds: float | None  # null before this server has measured a run
    # the range of the recent runs (null while they agree, or before any)
    low: float | None = None
    high: float | None = None
    wait: float = 0.0  # seconds it would wait for the runs queued and running before it
    slowdown: float = 1.0  # how much slower the load now makes a run (learnt from the runs)
    seconds_per_iteration_megapixel: float | None  # at the load now
    basis: str | None  # "runs" | "calibration" | null: what measured the speed
    measuring: bool  # the start-up test run is on its way (ask again soon)


class LayerView(_Model):
    name: str
    channels: int
    stride: int


class LayersView(_Model):
    layers: list[LayerView]
    methods: list[str]
    max_size: int
    default_target: str  # a channel that fires on the page's default image


class SaliencyView(_Model):
    target: str
    value: float
    working_size: list[int]
    map_size: list[int]
    image_size: list[int]
    maps: dict[str, str]  # method -> PNG data URL
