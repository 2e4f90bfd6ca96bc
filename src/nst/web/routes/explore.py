"""The Explore page's API: the network's layers, saliency maps by the three backward
rules, and gradient-ascent jobs (queued and streamed like stylizations).

The same rules as the rest of the app hold: the Guard (Host, Origin, body cap), uploads
decoded by the project's loader in a worker thread with the pixel caps, one saliency
computation at a time, sizes and iterations within the server's limits (the options'
declared caps), 422 for every bad target or parameter; the network is loaded off the
event loop.
"""

from __future__ import annotations

import base64
import io
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from ... import builtins
from ...errors import ConfigError, ImageError, ImageTooLarge, NstError
from ...explain import METHODS, SaliencyConfig, VisualizeConfig
from ...explain.saliency import display, saliency
from ...explain.targets import Target, parse
from ...imageio import image_size, load_image, to_pil, to_tensor, too_many_pixels
from ...layers import CHANNELS, NAMES, feature_size, pools_through
from ..jobs import AscentPlan, Job
from ..manager import QueueFull
from ..offload import in_own_thread
from ..schemas import FormView, JobView, LayersView, SaliencyView
from ..settings import WebSettings
from ..state import AppState, Problem, owner, state, visitor
from ..uploads import image_status

router = APIRouter(prefix="/api/explain")
Shared = Annotated[AppState, Depends(state)]
#: the page's first target: the channel of conv5_1 that responds most to the photo shown
#: (resolved per request, as ``nst saliency --target auto``; the reply names the channel)
DEFAULT_TARGET = "conv5_1:auto"
#: the longest side a saliency request may ask (three backward passes run at once)
MAX_SALIENCY_SIDE = 512


def _png(image: Any) -> str:
    buf = io.BytesIO()
    to_pil(image).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _limits(settings: WebSettings) -> dict[str, float]:
    """This server's limits for the Explore page: every run is at most a saliency size."""
    return {**settings.limits(), "max_size": min(settings.max_size, MAX_SALIENCY_SIDE)}


@router.get("/layers")
def layers(shared: Shared) -> LayersView:
    """The layers a target can name, their channels and how much they pool."""
    return LayersView.model_validate(
        {
            "layers": [
                {"name": n, "channels": CHANNELS[n], "stride": 2 ** pools_through(n)} for n in NAMES
            ],
            "methods": list(METHODS),
            "max_size": int(_limits(shared.settings)["max_size"]),
            "default_target": DEFAULT_TARGET,
        }
    )


@router.get("/config")
def ascent_schema(shared: Shared) -> FormView:
    """The options of a gradient-ascent run (the Explore page's form)."""
    return FormView.model_validate({"fields": VisualizeConfig.web_schema(_limits(shared.settings))})


def _compute(
    settings: WebSettings, data: bytes | None, filename: str, builtin: str | None, target: str,
    size: int,
) -> dict[str, Any]:  # fmt: skip
    try:
        if data is not None:
            w, h = image_size(data, filename)
            if w * h > settings.max_pixels:
                raise ImageTooLarge(filename, too_many_pixels(w, h, settings.max_pixels))
            image = to_tensor(load_image(data, name=filename, max_pixels=settings.max_pixels))
        else:
            if not builtins.is_builtin(builtin):
                raise ConfigError(f"unknown built-in image '{builtin}' (use builtin:NAME)")
            image = to_tensor(builtins.image(str(builtin)))
        t = parse(target)
        maps, value, wh = {}, 0.0, (0, 0)
        for method in METHODS:
            s = saliency(image, t, method, size=size)
            t = s.target  # an auto target resolved once, on this image
            maps[method] = _png(display(s.gradient, "magnitude" if method == "gradient"
                                        else "rgb"))  # fmt: skip
            value, wh = s.value, s.working_size
    except ImageError as exc:
        raise HTTPException(image_status(exc), str(exc)) from None
    except NstError as exc:
        raise HTTPException(422, str(exc)) from None
    layer = "pool5" if t.kind == "class" else str(t.layer)
    return {
        "target": t.label,
        "value": value,
        "working_size": list(wh),
        "map_size": list(feature_size(layer, wh)),
        "image_size": [int(image.shape[1]), int(image.shape[2])],
        "maps": maps,
    }


@router.post("/saliency")
async def saliency_maps(
    shared: Shared,
    image: UploadFile | None = File(None, description="An image file"),
    image_builtin: str | None = Form(None, description="or a builtin:NAME"),
    target: str = Form(..., description="conv5_1:12, conv5_1:12@3,4 or class:N"),
    size: int = Form(256, description="Longest side the network sees"),
) -> SaliencyView:
    """The target's saliency by gradient, deconvnet and guided backprop (PNG data URLs)."""
    if (image is None) == (image_builtin is None):
        raise HTTPException(422, "give one image (a file or a built-in)")
    try:  # the size as the command's --size is declared, capped by this server
        SaliencyConfig.from_dict({"size": size}, limits=_limits(shared.settings))
    except ConfigError as exc:
        raise Problem(422, str(exc), exc.option) from None
    data = await image.read() if image is not None else None
    name = (image.filename or "image") if image is not None else ""
    async with shared.saliency_busy:
        result = await in_own_thread(
            _compute, shared.settings, data, name, image_builtin, target, size
        )
    return SaliencyView.model_validate(result)


def _ascent_plan(settings: WebSettings, body: dict[str, Any]) -> tuple[Target, VisualizeConfig]:
    """The target and settings of a gradient-ascent request, checked (loads the network:
    run it off the event loop)."""
    t = parse(body["target"])
    config = VisualizeConfig.from_dict(body.get("params") or {}, limits=_limits(settings))
    config.check_caps(_limits(settings))
    from ...explain.network import network

    network().check(t, (config.size, config.size))
    return t, config


@router.post("/visualize", status_code=201)
async def start_ascent(
    request: Request, shared: Shared, who: Annotated[str | None, Depends(visitor)]
) -> JobView:
    """Queue a gradient-ascent job: ``{"target": "conv4_1:12", "params": {...}}``."""
    try:
        body = await request.json()
    except (ValueError, RecursionError, UnicodeDecodeError):
        raise HTTPException(422, 'send a JSON object: {"target": ..., "params": {...}}') from None
    if not isinstance(body, dict) or not isinstance(body.get("target"), str):
        raise HTTPException(422, "target: give a target such as conv4_1:12")
    try:
        t, config = await run_in_threadpool(_ascent_plan, shared.settings, body)
    except ConfigError as exc:
        raise Problem(422, str(exc), exc.option) from None
    except NstError as exc:
        raise HTTPException(422, str(exc)) from None
    manager = shared.manager
    job_id, folder = await run_in_threadpool(manager.new_folder, owner(who))
    params = {"target": t.label, **config.to_dict()}
    job = Job(job_id, folder, AscentPlan(t, config), None, [], params, owner=owner(who))
    try:
        view = manager.submit(job)
    except QueueFull as exc:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
        raise HTTPException(429, str(exc)) from None
    return JobView.model_validate(view)
