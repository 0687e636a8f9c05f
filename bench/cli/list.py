"""``fingerbench list``: plugins, datasets and protocols with their availability."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench.cli.argtypes import Once
from bench.cli.helpstyle import epilog

EXAMPLES = [
    "fingerbench list",
    "fingerbench list datasets --data-root ~/data",
    "fingerbench list extractors --json",
]


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("list", help="list extractors, matchers, datasets and protocols",
                       description="List every registered extractor, matcher, dataset and protocol, "
                                   "with its availability and, when unavailable, the reason; for "
                                   "datasets, whether their files were found and their resolution.",
                       epilog=epilog(EXAMPLES))
    p.add_argument("what", nargs="?", choices=["extractors", "matchers", "quality", "indexes", "datasets", "protocols"],
                   help="list only this kind")
    p.add_argument("--data-root", type=Path, action=Once,
                   help="folder holding datasets in their default sub-folders: say which datasets are found "
                        "there (default: the FINGERBENCH_DATA environment variable)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def _resolution_of(row: dict[str, Any]) -> str:
    if not row["dpi"]:
        return "dpi given by dataset-param"
    size = f", {row['image_size'][0]} x {row['image_size'][1]} px" if row["image_size"] else ", size varies"
    return f"{row['dpi']:g} dpi{size}"


def _dataset_row(name: str, info: Any, data_root: Path | None) -> dict[str, Any]:
    """A dataset with whether its folder was found (below the data root) and its resolution."""
    import os

    from bench.datasets import DatasetError
    from bench.datasets.registry import DATA_ENV, resolve_root

    row: dict[str, Any] = {"name": name, "available": True, "reason": "", "title": info.title, "dpi": info.dpi,
                           "image_size": list(info.image_size) if info.image_size else None,
                           "protocols": list(info.protocols), "found": False, "path": None}
    if name == "synthetic":
        from bench.synthetic.dataset import DEFAULT_PARAMS, default_root
        from bench.synthetic.generate import is_complete, make_config

        folder = default_root()
        made = is_complete(folder, make_config(**DEFAULT_PARAMS))
        row.update(found=True, path=str(folder),
                   where=f"embedded: {folder}" if made else "embedded: generated into the cache on first use")
        return row
    if not info.default_subdir:
        row["where"] = "give its folder with --dataset-path"
        return row
    if data_root is None and not os.environ.get(DATA_ENV):
        row["where"] = f"not looked for: no --data-root (or {DATA_ENV}) given"
        return row
    try:
        folder = resolve_root(info, None, data_root)
    except DatasetError:
        row["where"] = f"not found in <data root>/{info.default_subdir}"
        return row
    if not any(folder.iterdir()):
        row["where"] = f"{folder} is empty"
        return row
    row.update(found=True, path=str(folder), where=str(folder))
    return row


def run(args: argparse.Namespace) -> int:
    from bench import datasets, protocols
    from bench.plugins import registry

    out: dict[str, list[dict[str, Any]]] = {}
    for kind, section in (("extractor", "extractors"), ("matcher", "matchers"), ("quality", "quality"),
                          ("index", "indexes")):
        rows = []
        for name in registry.names(kind):
            e = registry.entry(kind, name)
            ok, reason = e.availability()
            rows.append({"name": name, "available": ok, "reason": reason, "target": e.target,
                         "package": e.distribution})
        out[section] = rows
    out["datasets"] = [_dataset_row(name, info, args.data_root)
                       for name, info in sorted(datasets.available().items())]
    out["protocols"] = [{"name": n, "available": True, "reason": "", "description": d}
                        for n, (_, d) in protocols.PROTOCOLS.items()]
    if args.what:
        out = {args.what: out[args.what]}
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    for section, rows in out.items():
        print(f"{section}:")
        for r in rows:
            if section == "datasets":
                state = "found" if r["found"] else "not found"
                print(f"  {r['name']:<24} {state:<12} {_resolution_of(r):<28} {r['where']}")
            elif r["available"]:
                detail = r.get("title") or r.get("description") or r.get("target") or ""
                print(f"  {r['name']:<24} available    {detail}")
            else:
                print(f"  {r['name']:<24} unavailable  {r['reason']}")
        print()
    return 0
