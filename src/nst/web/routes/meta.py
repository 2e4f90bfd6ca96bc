"""What the pages ask of the server before a job: its options and limits, the built-in
images, and how long a run would take here."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import Response

from ... import builtins
from ...config import INIT_KEYWORDS
from ...errors import NstError
from ..jobs import TERMINAL
from ..schemas import BuiltinView, ConfigView, Estimate
from ..state import AppState, owner, state, visitor

router = APIRouter(prefix="/api")
Shared = Annotated[AppState, Depends(state)]


@router.get("/builtins")
def builtin_list(shared: Shared) -> list[BuiltinView]:
    """The built-in example images: photos (content) and generated paintings (styles),
    each with its thumbnail inlined (a data URL), so a gallery shows at once."""
    return [
        BuiltinView(
            name=b.ref,
            kind=b.kind,
            title=b.title,
            url=f"/api/builtins/{n}.png",
            thumb=shared.gallery.thumb(n),
        )
        for n, b in builtins.BUILTINS.items()
    ]


@router.get("/builtins/{name}.png", response_class=Response)
def builtin_image(name: str, shared: Shared) -> Response:
    if name not in builtins.BUILTINS:
        raise HTTPException(404, "no such built-in image")
    return Response(shared.gallery.png(name), media_type="image/png")


@router.get("/config")
def config_schema(shared: Shared) -> ConfigView:
    """Every option a job may set (kind, default, range, choices, help) and this
    server's limits: the page builds its form and checks from this."""
    settings = shared.settings
    limits = {
        "max_size": settings.max_size,
        "max_iterations": settings.max_iterations,
        "max_styles": settings.max_styles,
        "max_body": settings.max_body,
        "max_pixels": settings.max_pixels,
    }
    fields = shared.config_class.web_schema(settings.limits())
    presets = shared.config_class.PRESETS
    return ConfigView.model_validate(
        {
            "fields": fields,
            "limits": limits,
            "init": list(INIT_KEYWORDS),
            "presets": presets,
            "implied": shared.config_class.implied(),
            "ended": list(TERMINAL),
        }
    )


@router.get("/estimate")
def estimate(
    shared: Shared,
    who: Annotated[str | None, Depends(visitor)],
    size: int,
    iterations: int,
    aspect: float = 0.75,
    preset: str | None = None,
    style_loss: str | None = None,
) -> Estimate:
    """Seconds a run would take on this server if started now: the measured speed
    (seconds per iteration per megapixel) of its recent runs of the same style loss (the
    preset's, unless given; "runs") at the machine's load now, else of its start-up test
    run ("calibration"), times the work; a range once the recent runs vary; ``wait``: the
    runs before it (visitors take turns: those its turn comes after). Null while nothing
    has been measured."""
    try:
        given = {"size": size, "iterations": iterations, "preset": preset, "style_loss": style_loss}
        config = shared.config_class.from_dict({k: v for k, v in given.items() if v is not None})
        if not 0.05 <= aspect <= 20:
            raise HTTPException(422, "aspect must be between 0.05 and 20")
    except NstError as exc:
        raise HTTPException(422, str(exc)) from None
    short = min(aspect, 1 / aspect)  # the short side over the long one
    work = sum(n * s * s * short / 1e6 for s, n in zip(config.stage_sizes, config.stage_iterations))
    measuring = shared.manager.measuring
    got = shared.manager.estimate(work, config.style_loss, owner(who))
    if got is None:
        return Estimate(seconds=None, seconds_per_iteration_megapixel=None, basis=None,
                        measuring=measuring)  # fmt: skip
    speed = got.speed
    varies = speed.varies
    return Estimate(
        seconds=speed.median * got.work,
        low=speed.low * got.work if varies else None,
        high=speed.high * got.work if varies else None,
        wait=round(got.wait, 1),
        slowdown=round(speed.slowdown, 3),
        seconds_per_iteration_megapixel=speed.median,
        basis=speed.basis,
        measuring=measuring,
    )
