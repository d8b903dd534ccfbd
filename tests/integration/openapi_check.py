#!/usr/bin/python3
"""Checks HTTP responses against docs/openapi.yaml, so that the document
and what dcmfd answers cannot drift apart.

As a module (test_api.py): Checker().check(method, path, status,
content_type, body) returns None or a sentence saying what does not match.

As a program (the Node tests): reads one JSON object per line on stdin,
{"method", "path", "status", "contentType", "body"} with body a string,
and prints one JSON line per input: {"ok": true} or {"ok": false,
"error": "..."}.

The OpenAPI 3.0 Schema Objects are turned into JSON Schema (draft 7) on
load: "nullable: true" adds "null" to the type, and $ref into
#/components is resolved against the whole document. Needs the Debian
packages python3-yaml and python3-jsonschema (run with /usr/bin/python3).
"""

import json
import os
import re
import sys

import jsonschema
import yaml

DEFAULT_SPEC = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            "..", "..", "docs", "openapi.yaml")


def _to_json_schema(node):
    """Returns a copy of |node| with OpenAPI 3.0 nullable rewritten."""
    if isinstance(node, list):
        return [_to_json_schema(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _to_json_schema(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") is True:
        t = out.get("type")
        if isinstance(t, str):
            out["type"] = [t, "null"]
        elif "enum" in out:
            out["enum"] = list(out["enum"]) + [None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


class Checker:
    def __init__(self, spec_path=DEFAULT_SPEC):
        with open(spec_path, encoding="utf-8") as f:
            self.spec = _to_json_schema(yaml.safe_load(f))
        self.resolver = jsonschema.RefResolver.from_schema(self.spec)
        self.routes = []  # (compiled path regex, path item)
        for template, item in self.spec.get("paths", {}).items():
            rx = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
            self.routes.append((re.compile(rx), item))
        self.checked = 0  # bodies validated

    def _deref(self, node):
        while isinstance(node, dict) and "$ref" in node:
            _, node = self.resolver.resolve(node["$ref"])
        return node

    def _validate(self, schema, doc, what):
        v = jsonschema.Draft7Validator(schema, resolver=self.resolver)
        errors = sorted(v.iter_errors(doc), key=lambda e: list(e.path))
        if errors:
            e = errors[0]
            where = "/" + "/".join(str(p) for p in e.path)
            return (f"{what}: {where}: {e.message[:300]}"
                    + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""))
        return None

    def _problem_schema(self):
        return {"$ref": "#/components/schemas/ProblemDetails"}

    def check(self, method, path, status, content_type, body):
        """Returns None when the response matches the document, else why not.
        |path| may carry a query; |body| is bytes or str."""
        if isinstance(body, str):
            body = body.encode()
        path = path.split("?", 1)[0].split("#", 1)[0]
        what = f"{method} {path} -> {status}"
        mtype = (content_type or "").split(";")[0].strip().lower()
        if method == "HEAD" or status in (204, 304):
            return f"{what}: a body on a response that has none" if body else None
        item = next((it for rx, it in self.routes if rx.match(path)), None)
        op = item.get(method.lower()) if item else None
        if op is None:
            # No such operation: only an error may come back, as a problem.
            if status < 400:
                return f"{what}: a success for an operation the document lacks"
            if mtype != "application/problem+json":
                return f"{what}: an error as {mtype or 'no content-type'}, not a problem"
            return self._check_json(self._problem_schema(), body, what)
        responses = op.get("responses", {})
        resp = responses.get(str(status), responses.get("default"))
        if resp is None:
            return f"{what}: status {status} is not listed for this operation"
        resp = self._deref(resp)
        content = resp.get("content")
        if not content:
            return f"{what}: a body the document does not describe" if body else None
        media = content.get(mtype)
        if media is None:
            return (f"{what}: content-type {mtype or 'none'} is not one of "
                    f"{sorted(content)}")
        if not mtype.endswith("json"):
            self.checked += 1
            return None
        return self._check_json(media.get("schema", {}), body, what)

    def _check_json(self, schema, body, what):
        try:
            doc = json.loads(body)
        except ValueError as e:
            return f"{what}: the body is not JSON ({e})"
        self.checked += 1
        return self._validate(schema, doc, what)


def main():
    checker = Checker(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_SPEC)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            err = checker.check(r["method"], r["path"], int(r["status"]),
                                r.get("contentType"), r.get("body") or "")
        except Exception as e:  # a malformed line is reported, not fatal
            err = f"checker: {type(e).__name__}: {e}"
        print(json.dumps({"ok": err is None} if err is None
                         else {"ok": False, "error": err}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
