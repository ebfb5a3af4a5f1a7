"""The API's ``/docs``: the real Swagger UI, its files served by the app itself.

FastAPI's default ``/docs`` loads Swagger UI's JavaScript and CSS from a CDN, so it shows
a blank page offline or behind a strict proxy. The package ``swagger-ui-bundle-v2`` ships
the Swagger UI 5 files; the shell reads the few the page needs (:data:`SWAGGER_FILES`,
``pipelines.serve_http.swagger_ui_files``) and the app serves them from memory under
:data:`ASSETS_PATH`, so the page references no other host. No web stack here:
:mod:`serving.api` builds the routes.
"""

from __future__ import annotations

from typing import Any

#: The OpenAPI description: what a user of the API needs to know (Markdown).
DESCRIPTION = """\
Today's ranked open deals, one deal explained, and the score of a deal posted with its
history, all by the champion models as of the API's `as_of` (see `/health`).

- **Auth**: every route but `/health`, `/docs` and `/openapi.json` needs
  `Authorization: Bearer <token>` ("Authorize" above). Without it: 401, answered before
  the body is read, and the connection is closed.
- **Limits**: a body over the size limit, or more rows in one `POST /score` than allowed
  (the deal + stage_history + touchpoints), is 413; a body not complete within the read
  timeout is 408. `/health` never waits behind scoring.
- **Times**: every timestamp in a response, in fields and inside messages, is ISO 8601 in
  UTC with a `Z`, whole seconds: `2026-06-30T00:00:00Z`.
- **Errors** are JSON: `{"error": "...", "message": "..."}`; a request that breaks the data
  contract is 422 `{"error": "invalid_input", "problems": [...]}`, every problem at once,
  each naming table, field and row (1-based position in its array).
- **One deal** (`GET /deals/{deal_id}`): the explanation `dealcast explain DEAL_ID` prints,
  as JSON. An id not in the CRM is 404; a deal not open at `as_of` (closed, or created
  later) is 409 `deal_not_open`, saying when and how it closed.
- **Scoring a posted deal** (`POST /score`): the rows are checked like a CRM folder, and the
  deal gets exactly the row the daily export would give it were it in the CRM. Reposting
  a deal of the CRM (same `deal_id`) replaces its deal row, and its stage_history /
  touchpoints rows when some are posted (none posted keeps the CRM's); `warnings` say what
  was replaced, kept or left empty, and when the deal has no stage or a closed one.
"""
#: The Swagger UI files the app serves, name -> content type (nothing else of the bundle).
SWAGGER_FILES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
#: Where they are served.
ASSETS_PATH = "/docs/assets"
#: Swagger UI's options beside FastAPI's defaults: no online validator badge (it would
#: send the spec to validator.swagger.io), and the time each "Try it out" call took.
SWAGGER_PARAMETERS: dict[str, Any] = {"validatorUrl": None, "displayRequestDuration": True}


def asset_url(name: str) -> str:
    """The path a Swagger UI file of :data:`SWAGGER_FILES` is served at."""
    return f"{ASSETS_PATH}/{name}"


#: The docs page and its files: answered without a token.
DOCS_PATHS = frozenset({"/docs", *(asset_url(name) for name in SWAGGER_FILES)})
