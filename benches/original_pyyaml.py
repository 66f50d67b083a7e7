"""The original tool's approach, for comparison: PyYAML load, patch, dump.

Loads every document, sets istio-proxy's preStop in each workload, and dumps
the stream again (losing comments and formatting, as the original tool did).
Usage: python3 benches/original_pyyaml.py INPUT OUTPUT
"""
import sys

import yaml

PATHS = {
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "Pod": ("spec",),
}
HOOK = {"exec": {"command": ["/graceful-wait/graceful-wait", "tcp", "--port=15090", "--timeout=25s"]}}


def patch(doc):
    if not isinstance(doc, dict):
        return
    if doc.get("kind") == "List":
        for item in doc.get("items") or []:
            patch(item)
        return
    spec = doc
    for key in PATHS.get(doc.get("kind"), ("spec", "template", "spec")):
        spec = (spec or {}).get(key) if isinstance(spec, dict) else None
    if not isinstance(spec, dict):
        return
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        if c.get("name") == "istio-proxy":
            c.setdefault("lifecycle", {})["preStop"] = HOOK


def main():
    with open(sys.argv[1]) as f:
        docs = list(yaml.safe_load_all(f))
    for d in docs:
        patch(d)
    with open(sys.argv[2], "w") as f:
        yaml.safe_dump_all(docs, f)


if __name__ == "__main__":
    main()
