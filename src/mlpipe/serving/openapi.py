"""The service's OpenAPI document, built from the served model's own training profile and request rules: each
feature's type, categories (enum), physical range (minimum/maximum, refused beyond), training range
(accepted and flagged beyond), nullability, an example body from a real row's typical values; the answers
/predict and /feedback give, and the bodies of their refusals (400, 404, 413, 422, 500, 503) as the service
writes them. The bodies are still parsed by the service itself (`body`, `request_rules`): this only says
what that parser accepts. Pure functions, no I/O."""

from __future__ import annotations

import copy

from mlpipe.serving.request_rules import RequestRules

JSON = "application/json"
SCHEMAS = "#/components/schemas/"


def input_example(profile: dict, features: list[str]) -> dict:
    """A valid /predict body from the training profile: the commonest category, the median number."""
    record = {}
    for name in features:
        col = profile["columns"][name]
        if col["kind"] == "categorical":
            record[name] = max(col["categories"], key=col["categories"].get)
        else:
            median = col["quantiles"]["0.5"]
            record[name] = int(median) if col["dtype"].startswith("int") else median
    return {"records": [record]}


def _nullable(schema: dict, nullable: bool) -> dict:
    if not nullable:
        return schema
    out = {**schema, "type": [schema["type"], "null"]}
    if "enum" in out:
        out["enum"] = [*out["enum"], None]
    return out


def field_schema(name: str, rules: RequestRules, profile: dict) -> dict:
    """The JSON schema of one feature, as `request_rules.check_record` judges it."""
    col = profile["columns"][name]
    nullable = name not in rules.not_null
    null_text = (
        "null allowed (an unknown value)" if nullable else "null refused"
    ) + f"; null rate in training {col.get('null_rate', 0):.3g}"
    if name in rules.categorical:
        seen = sorted(rules.categorical[name])
        counts = col.get("categories", {})
        commonest = max(counts, key=counts.get) if counts else None
        refuse = rules.unseen_category == "refuse"
        text = (
            f"Categorical: one of the {len(seen)} categories seen in training (others: the record is refused)"
            if refuse
            else f"Categorical: {len(seen)} categories seen in training (x-training-categories); any other "
            "is answered as an unknown category and flagged (serve.unseen_category: flag)"
        )
        text += f"; commonest {commonest!r}" if commonest is not None else ""
        schema: dict = {"type": "string", "description": f"{text}; {null_text}."}
        if refuse:
            return _nullable(schema | {"enum": seen}, nullable)
        schema["x-training-categories"] = seen
        return _nullable(schema | ({"examples": [commonest]} if commonest is not None else {}), nullable)
    schema = {"type": "number"}
    lo, hi = rules.physical.get(name, (None, None))
    if lo is not None:
        schema["minimum"] = lo
    if hi is not None:
        schema["maximum"] = hi
    tmin, tmax = rules.numerical[name]
    parts = [f"Numerical ({col.get('dtype', 'number')} in training)"]
    if lo is not None or hi is not None:
        parts.append(f"physically possible {_bound(lo)}..{_bound(hi)} (beyond: refused, 422)")
    parts.append(f"training range {_bound(tmin)}..{_bound(tmax)} (beyond: accepted and flagged)")
    median = (col.get("quantiles") or {}).get("0.5")
    if median is not None:
        parts.append(f"median {median:g}")
    schema["description"] = "; ".join([*parts, null_text]) + "."
    if tmin is not None:
        schema["x-training-min"] = tmin
    if tmax is not None:
        schema["x-training-max"] = tmax
    return _nullable(schema, nullable)


def _bound(v: float | None) -> str:
    return "" if v is None else f"{v:g}"


def record_schema(rules: RequestRules, profile: dict, features: list[str]) -> dict:
    """One /predict record: every feature required (send null where allowed), no other field."""
    return {
        "type": "object",
        "description": "One row of the model's features: every field required, no other field.",
        "properties": {name: field_schema(name, rules, profile) for name in features},
        "required": list(features),
        "additionalProperties": False,
    }


def predict_request_schema(max_records: int) -> dict:
    return {
        "description": f'{{"records": [record, ...]}} with 1 to {max_records} records (more: 413), '
        "or one record alone.",
        "oneOf": [
            {
                "type": "object",
                "properties": {
                    "records": {
                        "type": "array",
                        "items": {"$ref": SCHEMAS + "PredictRecord"},
                        "minItems": 1,
                        "maxItems": max_records,
                    }
                },
                "required": ["records"],
                "additionalProperties": False,
            },
            {"$ref": SCHEMAS + "PredictRecord"},
        ],
    }


def label_schema(task: str, classes: list) -> dict:
    """A feedback label: one of the classifier's classes, or a finite number (regression)."""
    if task == "regression":
        return {"type": "number", "description": "The observed value of the target (finite)."}
    kinds = sorted({"integer" if isinstance(c, int) else "string" for c in classes})
    return {
        "type": kinds[0] if len(kinds) == 1 else kinds,
        "enum": list(classes),
        "description": "The observed class (one of the model's classes).",
    }


def predict_answer_schema(task: str, classes: list) -> dict:
    """The 200 body of /predict for the served model's task (`app.answer_body`)."""
    props: dict = {
        "request_id": {"type": "string", "description": "Send it back to /feedback with the true labels."},
        "model": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "version": {"type": "string"},
                "run_id": {"type": "string"},
            },
            "required": ["name", "version", "run_id"],
        },
        "predictions": {
            "type": "array",
            "items": _or_null(label_schema(task, classes)),
            "description": "One per record, in order; null for a refused record.",
        },
        "flags": {
            "type": "array",
            "items": {"$ref": SCHEMAS + "Flag"},
            "description": "Accepted values outside the training range, and categories never seen in "
            "training (answered as an unknown category), of the answered records.",
        },
        "refused": {
            "type": "array",
            "items": {"$ref": SCHEMAS + "RefusedField"},
            "description": "The refused records' broken rules (one entry per field); empty when every record "
            "is answered. With ?all_or_nothing=true any of these refuses the whole request (422).",
        },
        "counts": {
            "type": "object",
            "properties": {k: {"type": "integer", "minimum": 0} for k in ("records", "answered", "refused")},
            "required": ["records", "answered", "refused"],
            "description": "Records in the request, answered, refused.",
        },
    }
    required = ["request_id", "model", "predictions", "flags", "refused", "counts"]
    if task == "binary":
        props["probabilities"] = {
            "type": "array",
            "items": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
            "description": f"P({classes[-1] if classes else 'positive'}) per record; null for a refused "
            "record.",
        }
    elif task == "multiclass":
        names = [str(c) for c in classes]
        props["probabilities"] = {
            "type": "array",
            "items": {
                "type": ["object", "null"],
                "properties": {n: {"type": "number", "minimum": 0, "maximum": 1} for n in names},
                "required": names,
            },
            "description": "One probability per class, per record; null for a refused record.",
        }
    if "probabilities" in props:
        required.insert(3, "probabilities")
    return {"type": "object", "properties": props, "required": required}


def _or_null(schema: dict) -> dict:
    """`schema` or null (a refused record's place in the answer)."""
    kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    out = {**schema, "type": [*kinds, "null"]}
    if "enum" in out:
        out["enum"] = [*out["enum"], None]
    return out


FLAG = {
    "type": "object",
    "description": "An accepted value: a number outside the training range (with the range), or a category "
    "never seen in training (answered as an unknown category).",
    "properties": {
        "record": {"type": "integer"},
        "field": {"type": "string"},
        "value": {"type": ["number", "string"]},
        "training_min": {"type": ["number", "null"], "description": "Numbers only."},
        "training_max": {"type": ["number", "null"], "description": "Numbers only."},
        "rule": {
            "type": "string",
            "enum": ["outside the training range (accepted)", "category never seen in training (accepted)"],
        },
    },
    "required": ["record", "field", "value", "rule"],
}

KINDS = (
    "unknown_field, missing_field, null, wrong_type, unseen_category (serve.unseen_category: refuse), "
    "not_finite, physically_impossible, too_large, not_an_object"
)

REFUSED_FIELD = {
    "type": "object",
    "description": "One broken rule of a refused record (`request_rules.Problem`).",
    "properties": {
        "record": {"type": "integer", "description": "The record's position in the request."},
        "field": {"type": "string"},
        "value": {"description": "The refused value (long text cut)."},
        "rule": {"type": "string"},
        "kind": {"type": "string", "description": KINDS + "."},
    },
    "required": ["record", "field", "value", "rule", "kind"],
}

REFUSAL = {
    "type": "object",
    "description": "Every refusal: one entry per broken rule, each naming the field and the rule.",
    "properties": {
        "detail": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "field": {
                        "type": "string",
                        "description": "A feature, records, labels, request_id, or `<body>`, `<model>`, "
                        "`<log>`, `<service>` for the body as a whole and the service's own state.",
                    },
                    "rule": {"type": "string"},
                    "record": {"type": "integer", "description": "422 of a record: its position."},
                    "value": {"description": "422 of a record: the refused value (long text cut)."},
                    "kind": {
                        "type": "string",
                        "description": f"422 of a record: {KINDS}.",
                    },
                },
                "required": ["field", "rule"],
            },
        },
        "request_id": {
            "type": "string",
            "description": "500 only: the id the service log files its cause under.",
        },
    },
    "required": ["detail"],
}


def _refusal(description: str, field: str, rule: str, **entry) -> dict:
    """A refusal: its description, the Refusal schema, an example entry as the service writes it."""
    entry |= {"field": field, "rule": rule}
    order = ("record", "field", "value", "rule", "kind")  # as `request_rules.Problem` writes them
    example = {"detail": [{k: entry[k] for k in order if k in entry}]}
    return {
        "description": description,
        "content": {JSON: {"schema": {"$ref": SCHEMAS + "Refusal"}, "example": example}},
    }


def _shed(description: str) -> dict:
    """503: the model is not loaded / the log cannot keep the answer (JSON), or too many requests (text)."""
    body = _refusal(description, "<model>", "loading")
    body["content"]["text/plain"] = {"schema": {"type": "string"}, "example": "Service Unavailable"}
    return body


def common_refusals(max_bytes: int) -> dict:
    """The refusals every POST can get (`guard.GuardRequests`, `body.parse_json`)."""
    return {
        "400": _refusal(
            "The body is not JSON, or nests too deep.",
            "<body>",
            "invalid JSON: Expecting value: line 1 column 1 (char 0)",
        ),
        "413": _refusal(
            f"The body is over {max_bytes} bytes.",
            "<body>",
            f"payload of {max_bytes + 1} bytes is over the limit of {max_bytes}",
        ),
        "500": _refusal(
            "An internal error (never bad input): the service log has its cause under the request id.",
            "<service>",
            "internal error (request id ...: the service log has its cause)",
        ),
    }


def predict_operation(
    rules: RequestRules | None,
    profile: dict | None,
    features: list[str],
    max_records: int,
    max_bytes: int,
    task: str | None = None,
    classes: list | None = None,
) -> dict:
    """requestBody and responses of POST /predict (the model's own, once one is loaded)."""
    body: dict = {"required": True, "content": {JSON: {"schema": {"$ref": SCHEMAS + "PredictRequest"}}}}
    if rules is not None and profile is not None:
        body["content"][JSON]["example"] = input_example(profile, features)
    responses = {
        "200": {
            "description": "One prediction per record, in order. A record that breaks a rule is refused "
            "alone: null in `predictions` (and `probabilities`), its broken rules in `refused`; the other "
            "records are answered. Values outside the training range and categories never seen in training "
            "are answered and flagged.",
            "content": {
                JSON: {
                    "schema": {"$ref": SCHEMAS + "PredictAnswer"},
                    "example": partial_answer_example(task, classes or [], features),
                }
            },
        },
        **common_refusals(max_bytes),
        "413": _refusal(
            f"Over {max_records} records, or a body over {max_bytes} bytes.",
            "records",
            f"{max_records + 1} records, over the limit of {max_records}",
        ),
        "422": _refusal(
            "Every record breaks a rule of the training profile, or one does and the request asked "
            "?all_or_nothing=true (each record, field, value and rule listed); or the records are not a "
            "non-empty list; or all_or_nothing is not true or false.",
            features[0] if features else "records",
            "missing field (send null for an unknown value where allowed)",
            record=0,
            value=None,
            kind="missing_field",
        ),
        "503": _shed(
            "No model loaded yet (`<model>`), the prediction log cannot keep the answer (`<log>`), or "
            "too many requests at once (plain text)."
        ),
    }
    return {
        "summary": "Predict",
        "description": "Predictions of the served model. Each record is checked against the model's "
        "training profile before the model sees it, and judged alone: a record that breaks a rule is "
        "refused, the others are answered (unless ?all_or_nothing=true). The answer is given once its rows "
        "are in the prediction log (answered records only).",
        "parameters": [ALL_OR_NOTHING],
        "requestBody": body,
        "responses": responses,
    }


ALL_OR_NOTHING = {
    "name": "all_or_nothing",
    "in": "query",
    "required": False,
    "schema": {"type": "boolean", "default": False},
    "description": "true: any refused record refuses the whole request (422 listing every broken rule), as "
    "before records were judged one by one. false (default): the other records are answered.",
}


def partial_answer_example(task: str | None, classes: list, features: list[str]) -> dict:
    """A 200 of three records, the second refused, as the served model's task answers it."""
    field = features[-1] if features else "<feature>"
    body: dict = {
        "request_id": "0123456789abcdef0123456789abcdef",
        "model": {"name": "<name>", "version": "3", "run_id": "<run id>"},
    }
    if task == "regression":
        body["predictions"] = [12.5, None, 40.0]
    else:
        first, last = (classes[0], classes[-1]) if classes else (0, 1)
        body["predictions"] = [first, None, last]
        if task == "multiclass":
            names = [str(c) for c in classes]
            body["probabilities"] = [
                {n: round(1 / len(names), 6) for n in names},
                None,
                {n: round(1 / len(names), 6) for n in names},
            ]
        else:
            body["probabilities"] = [0.12, None, 0.81]
    return body | {
        "flags": [],
        "refused": [
            {
                "record": 1,
                "field": field,
                "value": None,
                "rule": "null where none are allowed",
                "kind": "null",
            }
        ],
        "counts": {"records": 3, "answered": 2, "refused": 1},
    }


def feedback_operation(task: str | None, classes: list, max_bytes: int) -> dict:
    """requestBody and responses of POST /feedback."""
    example = {"request_id": "the request_id /predict answered", "labels": [classes[0] if classes else 0]}
    return {
        "summary": "Feedback",
        "description": "The true labels of an answered request, one per answered record (a refused record "
        "has none), in order, for monitoring.",
        "requestBody": {
            "required": True,
            "content": {JSON: {"schema": {"$ref": SCHEMAS + "FeedbackRequest"}, "example": example}},
        },
        "responses": {
            "200": {
                "description": "The labels are attached to the logged rows.",
                "content": {JSON: {"schema": {"$ref": SCHEMAS + "FeedbackAnswer"}}},
            },
            **common_refusals(max_bytes),
            "404": _refusal("No logged request has this id.", "request_id", "no logged request ..."),
            "422": _refusal(
                "Not {request_id, labels}, labels not of the model's classes, or not one per answered "
                "record.",
                "labels",
                "1 labels for 2 answered records (rule: one per answered record)",
            ),
            "503": _shed(
                "No model loaded yet (the labels' type is the model's), or too many requests at once."
            ),
        },
    }


def component_schemas(
    rules: RequestRules | None,
    profile: dict | None,
    features: list[str],
    max_records: int,
    task: str | None,
    classes: list,
) -> dict:
    loaded = rules is not None and profile is not None
    record = (
        record_schema(rules, profile, features)
        if loaded
        else {"type": "object", "description": "No model loaded yet: its features are not known."}
    )
    return {
        "PredictRecord": record,
        "PredictRequest": predict_request_schema(max_records),
        "PredictAnswer": predict_answer_schema(task or "binary", classes),
        "Flag": FLAG,
        "RefusedField": REFUSED_FIELD,
        "Refusal": REFUSAL,
        "FeedbackRequest": {
            "type": "object",
            "properties": {
                "request_id": {"type": "string", "minLength": 1, "description": "The id /predict answered."},
                "labels": {
                    "type": "array",
                    "items": label_schema(task, classes) if task else {},
                    "description": "One per answered record of that request, in order.",
                },
            },
            "required": ["request_id", "labels"],
        },
        "FeedbackAnswer": {
            "type": "object",
            "properties": {"request_id": {"type": "string"}, "labels_attached": {"type": "integer"}},
            "required": ["request_id", "labels_attached"],
        },
    }


def _json_answer(description: str, example: dict) -> dict:
    return {"description": description, "content": {JSON: {"schema": {"type": "object"}, "example": example}}}


NOT_READY = _json_answer(
    "No model is being served yet (loading, or it failed to load: the reason), or the prediction log is "
    "full (then the log's state too).",
    {"ready": False, "reason": "loading"},
)


METRICS_EXAMPLE = """mlpipe_requests_total{endpoint="/predict",status="200"} 12.0
mlpipe_model_info{alias="champion",name="flights-late",run_id="...",version="<version>"} 1.0
"""


def probe_operations(served, features: list[str], max_records: int) -> dict[str, dict]:
    """What GET /health, /ready, /model and /metrics answer, with examples (FastAPI documents each as an
    untyped JSON body: /docs showed `null`, and `application/json` for the Prometheus text); the /model
    example names the service's own features, input example and record limit."""
    version = served.version if served is not None else "3"
    model_example = {
        "name": served.name if served is not None else "flights-late",
        "version": version,
        "run_id": served.run_id if served is not None else "0123456789abcdef0123456789abcdef",
        "ref": "models:/<name>@champion",
        "git_commit": "<the commit it was trained from>",
        "data_md5": "<the DVC md5 of data/>",
        "model_sha256": "<the sha256 of the model file>",
        "metrics": {"<metric>": 0.0},
        "alias": "champion",
        "features": features,
        "input_example": input_example(served.profile, features)
        if served is not None
        else {"records": [{"<feature>": "<value>"}]},
        "max_records": max_records,
    }
    return {
        "/health": {
            "summary": "Liveness: the process answers (says nothing of the model)",
            "responses": {"200": _json_answer("The process is up.", {"status": "ok"})},
        },
        "/ready": {
            "summary": "Readiness: a model is served and the prediction log can keep its answers",
            "responses": {
                "200": _json_answer(
                    "Ready: the version served and the prediction log's state (ok, or degraded while rows "
                    "wait in the spool).",
                    {"ready": True, "model_version": version, "log": "ok", "spool_rows": 0, "spool_bytes": 0},
                ),
                "503": NOT_READY,
            },
        },
        "/model": {
            "summary": "The model served: its registry version, run, commit, data md5, sha256, metrics, "
            "features and an input example",
            "responses": {
                "200": _json_answer("The served model's record (abridged example).", model_example),
                "503": NOT_READY,
            },
        },
        "/metrics": {
            "summary": "Prometheus metrics: requests by route and status, latency, predictions, flags, "
            "the log's state, the model served",
            "responses": {
                "200": {
                    "description": "Prometheus text exposition format.",
                    "content": {
                        "text/plain": {
                            "schema": {"type": "string"},
                            "example": METRICS_EXAMPLE.replace("<version>", version),
                        }
                    },
                }
            },
        },
    }


def service_openapi(base: dict, served, features: list[str], max_records: int, max_bytes: int) -> dict:
    """`base` (FastAPI's own document of the routes) with /predict and /feedback described from `served` (a
    `Served`, or None while no model is loaded)."""
    doc = copy.deepcopy(base)
    rules = served.rules if served is not None else None
    profile = served.profile if served is not None else None
    task = served.task if served is not None else None
    classes = list(served.classes) if served is not None else []
    paths = doc.setdefault("paths", {})
    if "/predict" in paths:
        paths["/predict"]["post"] |= predict_operation(
            rules, profile, features, max_records, max_bytes, task, classes
        )
    if "/feedback" in paths:
        paths["/feedback"]["post"] |= feedback_operation(task, classes, max_bytes)
    for path, operation in probe_operations(served, features, max_records).items():
        if "get" in paths.get(path, {}):
            paths[path]["get"] |= operation
    doc.setdefault("components", {}).setdefault("schemas", {}).update(
        component_schemas(rules, profile, features, max_records, task, classes)
    )
    if served is not None:
        doc["info"]["description"] = (
            f"{doc['info'].get('description', '')}\n\nServing **{served.name}** version {served.version} "
            f"(run `{served.run_id}`, task {served.task}). Request fields, categories and ranges below are "
            "this model's training profile."
        ).strip()
    return doc
