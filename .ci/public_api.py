#!/usr/bin/env python3
"""The public API of a crate, one line per item, from rustdoc's JSON output.

    python3 .ci/public_api.py target/doc/stratacache.json > api/stratacache.txt

Walks the public items from the crate root (modules, re-exports, types, traits, functions,
methods of inherent impls, fields, variants, trait impls that are not blanket or auto
impls) and prints each with its path and, for functions, a compact signature. The first line
names rustdoc's JSON format version: a snapshot is only compared with output of the same
version (`.ci/run` says so and skips the comparison when they differ).
"""

import json
import sys


def render_args(args):
    if not args:
        return ""
    if "angle_bracketed" in args:
        parts = []
        for arg in args["angle_bracketed"].get("args", []):
            if "type" in arg:
                parts.append(ty(arg["type"]))
            elif "lifetime" in arg:
                parts.append(arg["lifetime"])
            elif "const" in arg:
                parts.append("_")
        for constraint in args["angle_bracketed"].get("constraints", []):
            binding = constraint.get("binding", {})
            if "equality" in binding and "type" in binding["equality"]:
                parts.append(f"{constraint['name']} = {ty(binding['equality']['type'])}")
            else:
                parts.append(constraint["name"])
        return f"<{', '.join(parts)}>" if parts else ""
    if "parenthesized" in args:
        inputs = ", ".join(ty(t) for t in args["parenthesized"].get("inputs", []))
        output = args["parenthesized"].get("output")
        return f"({inputs})" + (f" -> {ty(output)}" if output else "")
    return ""


def path_of(resolved):
    return resolved["path"].split("::")[-1] + render_args(resolved.get("args"))


def bounds(items):
    names = []
    for bound in items:
        if "trait_bound" in bound:
            names.append(path_of(bound["trait_bound"]["trait"]))
        elif "outlives" in bound:
            names.append(bound["outlives"])
    return " + ".join(names)


def ty(t):
    if t is None:
        return "()"
    kind, value = next(iter(t.items()))
    if kind == "primitive":
        return value
    if kind == "generic":
        return value
    if kind == "resolved_path":
        return path_of(value)
    if kind == "borrowed_ref":
        return "&" + ("mut " if value.get("is_mutable") else "") + ty(value["type"])
    if kind == "raw_pointer":
        return ("*mut " if value.get("is_mutable") else "*const ") + ty(value["type"])
    if kind == "tuple":
        return "(" + ", ".join(ty(x) for x in value) + ")"
    if kind == "slice":
        return "[" + ty(value) + "]"
    if kind == "array":
        return "[" + ty(value["type"]) + "; " + str(value["len"]) + "]"
    if kind == "impl_trait":
        return "impl " + bounds(value)
    if kind == "dyn_trait":
        return "dyn " + " + ".join(path_of(t["trait"]) for t in value.get("traits", []))
    if kind == "qualified_path":
        return ty(value["self_type"]) + "::" + value["name"]
    if kind == "function_pointer":
        sig = value.get("sig", value.get("decl", {}))
        return "fn(" + ", ".join(ty(i[1]) for i in sig.get("inputs", [])) + ")"
    return "?"


def signature(function):
    sig = function["sig"]
    inputs = ", ".join(
        name if name == "self" else f"{name}: {ty(t)}" for name, t in sig["inputs"]
    )
    output = sig.get("output")
    return f"({inputs})" + (f" -> {ty(output)}" if output else "")


def main(path):
    doc = json.load(open(path))
    index = doc["index"]
    lines = [f"# rustdoc JSON format {doc['format_version']}"]
    seen = set()

    def item(id_):
        return index.get(str(id_))

    def public(it):
        return it.get("visibility") == "public"

    def impls_of(owner_path, impl_ids):
        for impl_id in impl_ids:
            it = item(impl_id)
            if it is None:
                continue
            impl = it["inner"]["impl"]
            if impl.get("is_synthetic") or impl.get("blanket_impl"):
                continue
            if impl.get("trait"):
                lines.append(f"impl {path_of(impl['trait'])} for {owner_path}")
                continue
            for child in impl["items"]:
                member = item(child)
                if member is None or not public(member):
                    continue
                kind, inner = next(iter(member["inner"].items()))
                if kind == "function":
                    lines.append(f"fn {owner_path}::{member['name']}{signature(inner)}")
                else:
                    lines.append(f"{kind} {owner_path}::{member['name']}")

    def visit(id_, path):
        it = item(id_)
        if it is None:
            return
        key = (id_, path)
        if key in seen:
            return
        seen.add(key)
        kind, inner = next(iter(it["inner"].items()))
        if kind == "module":
            if path:
                lines.append(f"mod {path}")
            for child in inner["items"]:
                sub = item(child)
                if sub is None or not public(sub):
                    continue
                if "use" in sub["inner"]:
                    use = sub["inner"]["use"]
                    if use.get("is_glob"):
                        target = item(use.get("id"))
                        if target is not None:
                            visit_glob(target, path)
                        continue
                    name = use["name"]
                    if use.get("id") is None or item(use["id"]) is None:
                        lines.append(f"use {use['source']} as {join(path, name)}")
                        continue
                    visit(use["id"], join(path, name))
                else:
                    visit(child, join(path, sub["name"]))
        elif kind == "struct":
            lines.append(f"struct {path}")
            shape = inner["kind"]
            if not isinstance(shape, dict):  # a unit struct
                shape = {}
            fields = shape.get("plain", {}).get("fields", []) or shape.get("tuple", []) or []
            for field in fields:
                f = item(field) if field is not None else None
                if f is not None and public(f):
                    lines.append(f"field {path}::{f['name']}: {ty(f['inner']['struct_field'])}")
            impls_of(path, inner.get("impls", []))
        elif kind == "enum":
            lines.append(f"enum {path}")
            for variant in inner.get("variants", []):
                v = item(variant)
                if v is not None:
                    lines.append(f"variant {path}::{v['name']}")
            impls_of(path, inner.get("impls", []))
        elif kind == "trait":
            lines.append(f"trait {path}")
            for child in inner.get("items", []):
                member = item(child)
                if member is None:
                    continue
                mkind, minner = next(iter(member["inner"].items()))
                if mkind == "function":
                    lines.append(f"fn {path}::{member['name']}{signature(minner)}")
                else:
                    lines.append(f"{mkind} {path}::{member['name']}")
        elif kind == "function":
            lines.append(f"fn {path}{signature(inner)}")
        else:
            lines.append(f"{kind} {path}")

    def visit_glob(module_item, path):
        for child in module_item["inner"]["module"]["items"]:
            sub = item(child)
            if sub is not None and public(sub) and "use" not in sub["inner"]:
                visit(child, join(path, sub["name"]))

    def join(path, name):
        return f"{path}::{name}" if path else name

    visit(doc["root"], "")
    header, body = lines[0], sorted(set(lines[1:]))
    print(header)
    print("\n".join(body))


if __name__ == "__main__":
    main(sys.argv[1])
