"""`GET /dashboard`: a server-rendered page that reads every number from the JSON report endpoints.

The page itself holds no data and needs no key; its script asks for a key with the `read` scope
and sends it as a bearer token on each fetch. Plotly's browser bundle is served from the `plotly`
Python package, so nothing is built and nothing is loaded from a CDN.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
from pathlib import Path
from typing import Final

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

router = APIRouter(tags=["dashboard"])

API_DIR: Final = Path(__file__).resolve().parent.parent
TEMPLATES_DIR: Final = API_DIR / "templates"
STATIC_DIR: Final = API_DIR / "static"
# The page's own files change with the service; the browser revalidates them (cheap, ETag based).
OWN_ASSET_CACHE: Final = "no-cache"
# Plotly's bundle is addressed with its version in the query string, so it may be cached for long.
PLOTLY_CACHE: Final = "public, max-age=31536000, immutable"
OWN_ASSETS: Final = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}


@functools.lru_cache(maxsize=1)
def _templates() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def plotly_bundle() -> Path | None:
    """`plotly.min.js` shipped inside the installed `plotly` package, or None without it."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "package_data" / "plotly.min.js"
        if candidate.is_file():
            return candidate
    return None


def _plotly_version() -> str:
    try:
        return importlib.metadata.version("plotly")
    except importlib.metadata.PackageNotFoundError:
        return "missing"


@router.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
async def dashboard(request: Request) -> HTMLResponse:
    """The dashboard page: markup only; the data comes from the report endpoints."""
    root = request.scope.get("root_path", "").rstrip("/")
    html = _templates().get_template("dashboard.html").render(root=root, plotly_version=_plotly_version())
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


@router.get("/dashboard/static/plotly.min.js", include_in_schema=False)
async def plotly_js() -> FileResponse:
    """Plotly's browser bundle from the installed Python package."""
    bundle = plotly_bundle()
    if bundle is None:
        raise HTTPException(
            404,
            "plotly.min.js not found: install the 'plotly' Python package (a dependency of judge-service) "
            "to get the charts",
        )
    return FileResponse(bundle, media_type="text/javascript", headers={"Cache-Control": PLOTLY_CACHE})


@router.get("/dashboard/static/{name}", include_in_schema=False)
async def own_asset(name: str) -> FileResponse:
    """The dashboard's script and style sheet."""
    media_type = OWN_ASSETS.get(name)
    path = STATIC_DIR / name
    if media_type is None or not path.is_file():
        raise HTTPException(404, f"no dashboard asset {name!r}")
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": OWN_ASSET_CACHE})
