"""ReDoc at /redoc, served so that it makes no request outside this server.

fastapi-offline ships ReDoc's bundle, but the bundle's sidebar draws Redocly's logo from
cdn.redoc.ly, which the page's Content-Security-Policy blocks (a console error) and which would
tell a third party who reads our docs. ReDoc has no option to leave it out, so the bundle is
served with that one address replaced by an empty `data:` image: the image fails to load
without a request, and ReDoc's own error handler then leaves the logo out. The "API docs by
Redocly" link stays. The browser test records every request of /docs and /redoc and fails on
any to another origin, so a fastapi-offline upgrade that moves the logo is caught there.
"""

from functools import cache
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request, Response
from fastapi.openapi.docs import get_redoc_html
from fastapi.responses import HTMLResponse

OFFLINE_ASSETS = Path(fastapi_offline.__file__).parent / "static"
OFFLINE_URL = "/static-offline-docs"  # where fastapi-offline mounts OFFLINE_ASSETS
REDOC_JS_URL = "/redoc-assets/redoc.standalone.js"
CDN_LOGO = b'"https://cdn.redoc.ly/redoc/logo-mini.svg"'
NO_IMAGE = b'"data:,"'


@cache
def redoc_bundle() -> bytes:
    return (OFFLINE_ASSETS / "redoc.standalone.js").read_bytes().replace(CDN_LOGO, NO_IMAGE)


def install_redoc(app: FastAPI, path: str = "/redoc") -> None:
    """Add ReDoc at `path`; create the app with `redoc_url=None` so this is the only one."""

    @app.get(path, include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{REDOC_JS_URL}",
            redoc_favicon_url=f"{root}{OFFLINE_URL}/favicon.png",
            with_google_fonts=False,
        )

    @app.get(REDOC_JS_URL, include_in_schema=False)
    def redoc_js() -> Response:
        return Response(redoc_bundle(), media_type="text/javascript; charset=utf-8")
