"""The API's ``/docs`` page: one self-contained HTML page rendered from the OpenAPI spec.

FastAPI's Swagger UI and ReDoc load their JavaScript and CSS from a CDN, so they show a
blank page offline or behind a strict proxy, and no copy of those assets ships with the
installed packages. This page is plain HTML with inline CSS and no script: every path
with its method, summary, description, auth, query parameters, request body (fields and
the example) and responses, then every body schema. It works with the network off. The
machine-readable spec stays at ``/openapi.json``.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

_CSS = """
body{font:15px/1.5 system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:1rem;color:#222}
h1{font-size:1.6rem}h2{margin-top:2rem;border-bottom:1px solid #ccc}
.op{border:1px solid #ddd;border-radius:6px;margin:1rem 0;padding:.5rem 1rem}
.m{display:inline-block;min-width:4rem;font-weight:bold;color:#fff;border-radius:4px;
padding:0 .4rem;text-align:center}.get{background:#2f6f9f}.post{background:#3c8d3c}
code,pre{font-family:ui-monospace,monospace;font-size:13px}
pre{background:#f5f5f5;padding:.5rem;overflow-x:auto;white-space:pre-wrap}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ddd;padding:.2rem .4rem;
text-align:left;vertical-align:top}.lock{color:#a33}
"""


def docs_html(spec: dict[str, Any]) -> str:
    """The page for ``spec`` (an OpenAPI 3 document as FastAPI produces it)."""
    info = spec.get("info", {})
    title = escape(str(info.get("title", "API")))
    parts = [
        f"<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>{title}</title><style>{_CSS}</style></head><body>",
        f"<h1>{title} <small>v{escape(str(info.get('version', '')))}</small></h1>",
        "<p>Machine-readable: <a href='openapi.json'>openapi.json</a>.</p>",
        f"<pre>{escape(str(info.get('description', '')))}</pre>",
        "<h2>Endpoints</h2>",
    ]
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            parts.append(_operation(path, method, op, spec))
    parts.append("<h2>Schemas</h2>")
    for name, schema in spec.get("components", {}).get("schemas", {}).items():
        parts.append(f"<h3 id='{escape(name)}'>{escape(name)}</h3>")
        parts.append(_schema_table(schema, spec))
    parts.append("</body></html>")
    return "\n".join(parts)


def _operation(path: str, method: str, op: dict, spec: dict) -> str:
    lock = " <span class=lock>(bearer token)</span>" if op.get("security") else ""
    out = [
        f"<div class=op><p><span class='m {escape(method)}'>{escape(method.upper())}</span> "
        f"<code>{escape(path)}</code> — {escape(op.get('summary', ''))}{lock}</p>",
        f"<p>{escape(op.get('description', ''))}</p>",
    ]
    params = op.get("parameters", [])
    if params:
        rows = "".join(
            f"<tr><td><code>{escape(p['name'])}</code></td><td>{escape(p.get('in', ''))}</td>"
            f"<td>{'yes' if p.get('required') else 'no'}</td>"
            f"<td>{escape(_type(p.get('schema', {}), spec))}</td>"
            f"<td>{escape(p.get('description', ''))}</td></tr>"
            for p in params
        )
        out.append(
            "<table><tr><th>parameter</th><th>in</th><th>required</th><th>type</th>"
            f"<th>meaning</th></tr>{rows}</table>"
        )
    body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
    if body:
        schema = _resolve(body.get("schema", {}), spec)
        ref = body.get("schema", {}).get("$ref", "")
        name = ref.rsplit("/", 1)[-1]
        out.append(f"<p>Request body: <a href='#{escape(name)}'>{escape(name)}</a></p>")
        for example in schema.get("examples", [])[:1]:
            out.append(f"<pre>{escape(json.dumps(example, indent=2))}</pre>")
    responses = ", ".join(
        f"{escape(code)} {escape(r.get('description', ''))}"
        for code, r in op.get("responses", {}).items()
    )
    out.append(f"<p>Responses: {responses}</p></div>")
    return "".join(out)


def _schema_table(schema: dict, spec: dict) -> str:
    doc = f"<p>{escape(schema.get('description', ''))}</p>" if schema.get("description") else ""
    required = set(schema.get("required", []))
    rows = "".join(
        f"<tr><td><code>{escape(name)}</code></td><td>{'yes' if name in required else 'no'}"
        f"</td><td>{escape(_type(prop, spec))}</td>"
        f"<td>{escape(prop.get('description', ''))}</td></tr>"
        for name, prop in schema.get("properties", {}).items()
    )
    if not rows:
        return doc
    return (
        f"{doc}<table><tr><th>field</th><th>required</th><th>type</th><th>meaning</th></tr>"
        f"{rows}</table>"
    )


def _resolve(schema: dict, spec: dict) -> dict:
    ref = schema.get("$ref")
    if not ref:
        return schema
    return spec.get("components", {}).get("schemas", {}).get(ref.rsplit("/", 1)[-1], {})


def _type(schema: dict, spec: dict) -> str:
    """A short human type: ``integer (1..1000)``, ``array of StageRowIn``, ``string | null``."""
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " | ".join(_type(s, spec) for s in schema["anyOf"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_type(schema.get('items', {}), spec)}"
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None or high is not None:
        kind += f" ({'' if low is None else low}..{'' if high is None else high})"
    return str(kind)
