"""fal's published input schemas, read at run time from `../shared/specs/fal/`, and a validator for submit bodies.

Where the files live: `$ANCHORSHOT_SPECS_DIR` if set, else `<repo>/../shared/specs` (CI: the shared folder sits
beside the clone), else, in a git worktree, `<main checkout>/../shared/specs`. No copy is kept: when the folder is
absent the fake validates nothing extra, logs a warning, and `SPECS_MISSING` tells tests to skip.

Sources (see SOURCES.md there): `fal-ai_kling-video_v3_pro_image-to-video.platform-api.json` (fal's own OpenAPI for
v3 pro, with the `x-fal` image limits: the primary source, it wins over the zod transcription) and
`kling-input-schemas.from-fal-js-zod.json` (v3 standard, v2.5 turbo pro). Validation follows pydantic, which fal's
apps use: unknown fields are ignored (and reported in `Problems.unknown`), missing required fields, wrong types,
enum values, numeric ranges and string lengths are a 422 whose `detail` items carry `loc`, `msg` and `type`.

Rules a schema states only in words are checked after the fields, as a pydantic model validator runs only on fields
that passed (`model_rules`):
* Kling v3's `prompt` is "Either prompt or multi_prompt must be provided, but not both" (the description of `prompt`
  in fal's own OpenAPI, where both fields are optional and nullable). Read as pydantic would: a field that is absent
  or null is not provided, anything else is (an empty string or list too); exactly one must be, else a 422 at the
  model level, loc ["body"], type "value_error".
* Kling v3's `elements[].reference_image_urls`: "1-3 images supported. At least one image is required": an element
  with a `frontal_image_url` and no list, an empty one or more than 3 is a 422, loc ["body", "elements", i,
  "reference_image_urls"], type "value_error".
* Kling v3's `elements[].video_url`: "A request can only have one element with a video": two or more is a 422,
  loc ["body", "elements"], type "value_error".
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
PLATFORM_FILE = "fal-ai_kling-video_v3_pro_image-to-video.platform-api.json"
ZOD_FILE = "kling-input-schemas.from-fal-js-zod.json"


def _candidates() -> list[Path]:
    found = []
    if os.environ.get("ANCHORSHOT_SPECS_DIR"):
        found.append(Path(os.environ["ANCHORSHOT_SPECS_DIR"]))
    found.append(ROOT.parent / "shared" / "specs")
    dotgit = ROOT / ".git"
    if dotgit.is_file():  # a worktree: .git says "gitdir: <main>/.git/worktrees/<name>"
        text = dotgit.read_text("utf-8").strip()
        if text.startswith("gitdir:"):
            gitdir = Path(text.split(":", 1)[1].strip())
            common = gitdir / "commondir"
            main_git = (gitdir / common.read_text("utf-8").strip()).resolve() if common.exists() else gitdir
            found.append(main_git.parent.parent / "shared" / "specs")
    return found


def specs_dir() -> Path | None:
    """Where the shared specs are, or None."""
    for path in _candidates():
        if (path / "fal").is_dir():
            return path
    return None


@dataclass(frozen=True)
class EndpointSchema:
    endpoint: str
    schema: dict[str, Any]
    resolver: dict[str, dict[str, Any]]  # "#/..." ref -> schema
    source: str


@cache
def load_schemas() -> dict[str, EndpointSchema]:
    """Published input schemas by endpoint id ({} when the specs are absent)."""
    base = specs_dir()
    if base is None:
        log.warning(
            "fal specs not found (looked in %s): the fake fal validates no published schema", _candidates()
        )
        return {}
    out: dict[str, EndpointSchema] = {}
    zod_path = base / "fal" / ZOD_FILE
    if zod_path.exists():
        zod = json.loads(zod_path.read_text("utf-8"))
        refs = {f"#/definitions/{k}": v for k, v in zod.get("definitions", {}).items()}
        for endpoint, schema in zod.get("endpoints", {}).items():
            out[endpoint] = EndpointSchema(endpoint, schema, refs, ZOD_FILE)
    platform_path = base / "fal" / PLATFORM_FILE
    if platform_path.exists():  # the primary source wins where both describe an endpoint
        data = json.loads(platform_path.read_text("utf-8"))
        for entry in data.get("models", []):
            endpoint = entry["endpoint_id"]
            schemas = entry["openapi"]["components"]["schemas"]
            refs = {f"#/components/schemas/{k}": v for k, v in schemas.items()}
            post = entry["openapi"]["paths"][f"/{endpoint}"]["post"]
            ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            out[endpoint] = EndpointSchema(endpoint, refs[ref], refs, PLATFORM_FILE)
    return out


SPECS_MISSING = "fal's published schemas (../shared/specs/fal) are not beside this checkout"


@dataclass(frozen=True)
class ImageCheck:
    """An image URL at `loc` that carries `x-fal` limits."""

    loc: tuple[str | int, ...]
    url: str
    limits: dict[str, Any]


@dataclass
class Problems:
    errors: list[dict[str, Any]] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    images: list[ImageCheck] = field(default_factory=list)

    def add(self, loc: tuple[str | int, ...], msg: str, type_: str, value: Any) -> None:
        self.errors.append({"loc": ["body", *loc], "msg": msg, "type": type_, "input": value})


_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


def _is_type(value: Any, name: str) -> bool:
    if name == "null":
        return value is None
    if name in ("number", "integer") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[name])


def validate(schema: EndpointSchema, body: dict[str, Any]) -> Problems:
    """Check a submit body against a published schema, then (if its fields are valid) its `model_rules`."""
    problems = Problems()
    _object(schema, schema.schema, body, (), problems, top=True)
    if not problems.errors and isinstance(body, dict):
        problems.errors.extend(model_rules(schema, body))
    return problems


ONE_PROMPT = "Either prompt or multi_prompt must be provided, but not both"


def model_rules(schema: EndpointSchema, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The rules a schema states in its descriptions only (see the module notes), as 422 detail items."""
    props = schema.schema.get("properties", {})
    errors: list[dict[str, Any]] = []
    if "prompt" in props and "multi_prompt" in props:
        given = [name for name in ("prompt", "multi_prompt") if body.get(name) is not None]
        if len(given) != 1:
            errors.append(
                {
                    "loc": ["body"],
                    "msg": f"Value error, {ONE_PROMPT}",
                    "type": "value_error",
                    "input": {name: body.get(name) for name in ("prompt", "multi_prompt")},
                    "ctx": {"error": ONE_PROMPT},
                }
            )
    if "elements" in props and isinstance(body.get("elements"), list):
        errors.extend(_element_rules(body["elements"]))
    return errors


REFERENCES = "1-3 images supported. At least one image is required"
ONE_VIDEO = "A request can only have one element with a video."


def _value_error(loc: list[str | int], rule: str, value: Any) -> dict[str, Any]:
    return {
        "loc": loc,
        "msg": f"Value error, {rule}",
        "type": "value_error",
        "input": value,
        "ctx": {"error": rule},
    }


def _element_rules(elements: list[Any]) -> list[dict[str, Any]]:
    """Kling v3's element rules stated in words (module notes): 1-3 references beside a frontal image, one video."""
    errors: list[dict[str, Any]] = []
    videos = 0
    for i, element in enumerate(elements):
        if not isinstance(element, dict):
            continue
        videos += element.get("video_url") is not None
        refs = element.get("reference_image_urls")
        if element.get("frontal_image_url") is not None and not (
            isinstance(refs, list) and 1 <= len(refs) <= 3
        ):
            errors.append(_value_error(["body", "elements", i, "reference_image_urls"], REFERENCES, refs))
    if videos > 1:
        errors.append(_value_error(["body", "elements"], ONE_VIDEO, elements))
    return errors


def _resolve(schema: EndpointSchema, node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema.resolver[node["$ref"]]
    return node


def _object(
    schema: EndpointSchema,
    node: dict[str, Any],
    value: Any,
    loc: tuple,
    problems: Problems,
    *,
    top: bool = False,
) -> None:
    if not isinstance(value, dict):
        problems.add(loc, "Input should be a valid dictionary", "dict_type", value)
        return
    props = node.get("properties", {})
    for name in node.get("required", []):
        if name not in value:
            problems.add((*loc, name), "Field required", "missing", value)
    for name, item in value.items():
        if name not in props:
            if top:
                problems.unknown.append(name)
            continue
        _value(schema, props[name], item, (*loc, name), problems)


def _value(schema: EndpointSchema, node: dict[str, Any], value: Any, loc: tuple, problems: Problems) -> None:
    node = _resolve(schema, node)
    if "anyOf" in node:
        options = [_resolve(schema, o) for o in node["anyOf"]]
        best: Problems | None = None
        for option in options:
            trial = Problems()
            _value(schema, option, value, loc, trial)
            if not trial.errors:
                problems.images.extend(trial.images)
                return
            best = best or trial
        if best is not None:
            problems.errors.extend(best.errors)
        return
    if "not" in node:
        if _matches_type(schema, node["not"], value):
            problems.add(loc, "Input has the wrong type", "type_error", value)
        return
    expected = node.get("type")
    if expected is not None and not _is_type(value, expected):
        problems.add(loc, f"Input should be a valid {expected}", f"{expected}_type", value)
        return
    if "enum" in node and value not in node["enum"]:
        allowed = ", ".join(repr(v) for v in node["enum"])
        problems.add(loc, f"Input should be {allowed}", "literal_error", value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in node and value < node["minimum"]:
            problems.add(
                loc,
                f"Input should be greater than or equal to {node['minimum']}",
                "greater_than_equal",
                value,
            )
        if "maximum" in node and value > node["maximum"]:
            problems.add(
                loc, f"Input should be less than or equal to {node['maximum']}", "less_than_equal", value
            )
    if isinstance(value, str):
        if "maxLength" in node and len(value) > node["maxLength"]:
            problems.add(
                loc, f"String should have at most {node['maxLength']} characters", "string_too_long", value
            )
        if "x-fal" in node:
            problems.images.append(ImageCheck(loc, value, node["x-fal"]))
    if isinstance(value, list) and "items" in node:
        for i, item in enumerate(value):
            _value(schema, node["items"], item, (*loc, i), problems)
    if isinstance(value, dict) and ("properties" in node or node.get("type") == "object"):
        _object(schema, node, value, loc, problems)


def _matches_type(schema: EndpointSchema, node: dict[str, Any], value: Any) -> bool:
    node = _resolve(schema, node)
    expected = node.get("type")
    return expected is not None and _is_type(value, expected)
