"""Kubernetes objects validated offline, for `dlptui infra check` (infra_check.py).

An object is checked against the ``kubernetes`` client's own models (apiVersion/kind map to a
model: ``v1`` + ``Namespace`` -> ``V1Namespace``; every field known and of the model's type,
every required one there) or, for a custom resource, against a JSON schema: the Istio
``Gateway``'s and ``AuthorizationPolicy``'s written here, or a CustomResourceDefinition's openAPIV3Schema.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

QUANTITY_MAPS = {"limits", "requests", "capacity", "allocatable", "hard"}


def _namespaced(spec: dict[str, Any]) -> dict[str, Any]:
    """A namespaced object's schema: apiVersion, kind, metadata with a name and a namespace, and this `spec`."""
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {"metadata": {"type": "object", "required": ["name", "namespace"]}, "spec": spec},
    }


GATEWAY_SCHEMA: dict[str, Any] = _namespaced({
    "type": "object",
    "required": ["selector", "servers"],
    "additionalProperties": False,
    "properties": {
        "selector": {"type": "object", "additionalProperties": {"type": "string"}},
        "servers": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["port", "hosts"],
                "additionalProperties": False,
                "properties": {
                    "port": {
                        "type": "object",
                        "required": ["number", "name", "protocol"],
                        "additionalProperties": False,
                        "properties": {
                            "number": {"type": "integer", "minimum": 1, "maximum": 65535},
                            "name": {"type": "string"},
                            "protocol": {"enum": ["HTTP", "HTTPS", "GRPC", "HTTP2", "MONGO", "TCP", "TLS"]},
                            "targetPort": {"type": "integer"},
                        },
                    },
                    "hosts": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                    "tls": {"type": "object"},
                    "name": {"type": "string"},
                    "bind": {"type": "string"},
                },
            },
        },
    },
})
_STRINGS = {"type": "array", "items": {"type": "string"}}
_OPERATION_FIELDS = ("hosts", "notHosts", "ports", "notPorts", "methods", "notMethods", "paths", "notPaths")
_SOURCE_FIELDS = ("principals", "notPrincipals", "requestPrincipals", "notRequestPrincipals", "namespaces", "notNamespaces",
                  "ipBlocks", "notIpBlocks", "remoteIpBlocks", "notRemoteIpBlocks")
AUTHORIZATION_POLICY_SCHEMA: dict[str, Any] = _namespaced({  # security.istio.io AuthorizationPolicy, the fields Istio 1.22 knows
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "selector": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"matchLabels": {"type": "object", "additionalProperties": {"type": "string"}}},
        },
        "targetRef": {"type": "object"},
        "targetRefs": {"type": "array", "items": {"type": "object"}},
        "action": {"enum": ["ALLOW", "DENY", "AUDIT", "CUSTOM"]},
        "provider": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}},
        "rules": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "from": {"type": "array", "items": {
                        "type": "object", "additionalProperties": False, "required": ["source"],
                        "properties": {"source": {"type": "object", "additionalProperties": False,
                                                  "properties": {f: _STRINGS for f in _SOURCE_FIELDS}}},
                    }},
                    "to": {"type": "array", "items": {
                        "type": "object", "additionalProperties": False, "required": ["operation"],
                        "properties": {"operation": {"type": "object", "additionalProperties": False,
                                                     "properties": {f: _STRINGS for f in _OPERATION_FIELDS}}},
                    }},
                    "when": {"type": "array", "items": {
                        "type": "object", "additionalProperties": False, "required": ["key"],
                        "properties": {"key": {"type": "string", "minLength": 1}, "values": _STRINGS, "notValues": _STRINGS},
                    }},
                },
            },
        },
    },
})
CUSTOM_SCHEMAS = {
    ("networking.istio.io", "Gateway"): GATEWAY_SCHEMA,
    ("security.istio.io", "AuthorizationPolicy"): AUTHORIZATION_POLICY_SCHEMA,
}


def _model_class(api_version: str, kind: str):
    from kubernetes.client import models

    version = api_version.rsplit("/", 1)[-1]
    return getattr(models, version[:1].upper() + version[1:] + kind, None)


def validate_object(obj: Any, partial: bool = False) -> list[str]:
    """Every problem with one Kubernetes object, as `path: what` strings; [] when valid.

    `partial`: a template that its tool merges into a full object (a Determined pod spec):
    unknown fields and wrong types count, missing required fields do not.
    """
    if not isinstance(obj, dict):
        return ["the document is not a mapping"]
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return ["apiVersion and kind are required"]
    errors: list[str] = []
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not meta.get("name"):
        errors.append("metadata.name is required")
    group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
    if (group, kind) in CUSTOM_SCHEMAS:
        return errors + schema_errors(obj, CUSTOM_SCHEMAS[(group, kind)])
    cls = _model_class(api_version, kind)
    if cls is None:
        return errors + [f"{api_version} {kind} is not a kind dlptui infra check knows; add a schema for it"]
    _validate_model(obj, cls.__name__, "", errors, required=not partial)
    if kind == "CustomResourceDefinition" and not errors:
        errors.extend(_crd_schema_errors(obj))
    return errors


def _configuration():
    from kubernetes.client import Configuration

    config = Configuration()
    config.client_side_validation = True
    return config


def _validate_model(value: Any, type_name: str, path: str, errors: list[str], config=None, required=True) -> None:
    from kubernetes.client import models

    where = path or "(object)"
    if type_name.startswith("list["):
        if not isinstance(value, list):
            errors.append(f"{where}: expected a list")
            return
        for i, item in enumerate(value):
            _validate_model(item, type_name[5:-1], f"{path}[{i}]", errors, config, required)
        return
    if type_name.startswith("dict("):
        if not isinstance(value, dict):
            errors.append(f"{where}: expected a mapping")
            return
        inner = type_name[5:-1].split(", ", 1)[1]
        if inner == "str" and path.rsplit(".", 1)[-1] in QUANTITY_MAPS:
            inner = "quantity"
        for key, item in value.items():
            _validate_model(item, inner, f"{path}.{key}", errors, config, required)
        return
    primitive = {
        "str": (str,),
        "datetime": (str,),
        "date": (str,),
        "int": (int,),
        "float": (int, float),
        "bool": (bool,),
        "quantity": (str, int, float),
    }
    if type_name == "object":
        return
    if type_name in primitive:
        ok = isinstance(value, primitive[type_name]) and not (type_name != "bool" and isinstance(value, bool))
        if not ok:
            errors.append(f"{where}: expected {type_name}, got {type(value).__name__}")
        return
    cls = getattr(models, type_name, None)
    if cls is None:
        return
    if not isinstance(value, dict):
        errors.append(f"{where}: expected a mapping ({type_name})")
        return
    config = config or _configuration()
    by_json = {json_name: attr for attr, json_name in cls.attribute_map.items()}
    kwargs: dict[str, Any] = {}
    for key, item in value.items():
        if key not in by_json:
            errors.append(f"{path + '.' if path else ''}{key}: unknown field of {type_name}")
            continue
        attr = by_json[key]
        kwargs[attr] = item
        _validate_model(item, cls.openapi_types[attr], f"{path + '.' if path else ''}{key}", errors, config, required)
    for _ in range(len(cls.openapi_types) + 1):  # the model's setters name each missing required field
        try:
            cls(local_vars_configuration=config, **kwargs)
            return
        except ValueError as e:
            match = re.search(r"`(\w+)`, must not be `None`", str(e))
            if not match or match.group(1) not in cls.attribute_map:
                errors.append(f"{where}: {e}")
                return
            attr = match.group(1)
            if required:
                errors.append(f"{path + '.' if path else ''}{cls.attribute_map[attr]}: required by {type_name}")
            kwargs[attr] = "placeholder"


def schema_errors(instance: Any, schema: dict) -> list[str]:
    from jsonschema import Draft4Validator

    found = []
    for error in sorted(Draft4Validator(schema).iter_errors(instance), key=lambda e: list(e.path)):
        where = ".".join(str(p) for p in error.path) or "(object)"
        found.append(f"{where}: {error.message}")
    return found


def _crd_schema_errors(crd: dict) -> list[str]:
    from jsonschema import Draft4Validator
    from jsonschema.exceptions import SchemaError

    errors = []
    for version in crd.get("spec", {}).get("versions", []):
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        try:
            Draft4Validator.check_schema(schema or {})
        except SchemaError as e:
            errors.append(f"versions[{version.get('name')}].schema: not a valid JSON schema: {e.message}")
    return errors


def crd_schema(crd_file: Path) -> tuple[dict, dict]:
    import yaml

    crd = yaml.safe_load(crd_file.read_text())
    version = next(v for v in crd["spec"]["versions"] if v.get("storage"))
    return crd, version["schema"]["openAPIV3Schema"]


def pruned_fields(instance: Any, schema: dict, path: str = "") -> list[str]:
    """The fields a structural schema does not declare: the API server would silently drop them."""
    found: list[str] = []
    if isinstance(instance, dict) and schema.get("type", "object") == "object":
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        keep = schema.get("x-kubernetes-preserve-unknown-fields") is True
        for key, item in instance.items():
            here = f"{path}.{key}" if path else key
            if not path and key in ("apiVersion", "kind", "metadata"):
                continue
            if key in props:
                found += pruned_fields(item, props[key], here)
            elif isinstance(extra, dict):
                found += pruned_fields(item, extra, here)
            elif not keep and extra is not True:
                found.append(here)
    elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(instance):
            found += pruned_fields(item, schema["items"], f"{path}[{i}]")
    return found
