"""What a network-less GPU machine has, and installing the rest from wheels carried in ``.whl/``.

    python -m benchmarks.gpu_env OUT.json [--wheels .whl] [--dry-run]

Modules the project and its GPU check import are looked up by import name; the missing
ones are installed from the carried wheels only (``pip --no-index --no-deps``: nothing
the machine already has, e.g. its CUDA torch, is replaced). ``make gpu-wheels`` fills
``.whl/`` with the pinned wheels listed in ``WHEELS``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import platform
import subprocess
import sys
from pathlib import Path

# import name -> the carried distributions that provide it (pins in benchmarks/gpu-wheels.txt)
NEEDED = {
    "pydantic": ["pydantic", "pydantic-core", "annotated-types", "typing-inspection"],
    "yaml": ["PyYAML"],
    "typer": ["typer", "shellingham", "click"],
    "rich": ["rich"],
    "pytest": ["pytest", "pluggy", "iniconfig"],
    "hypothesis": ["hypothesis", "sortedcontainers"],
    "datasets": ["datasets", "dill", "multiprocess", "xxhash"],
}
PRESENT = ("torch", "transformers", "accelerate", "pandas", "sklearn", "safetensors", "numpy", "pyarrow")


def missing() -> list[str]:
    """Distributions to install: those of every needed module that does not import here."""
    return sorted({d for module, dists in NEEDED.items() if importlib.util.find_spec(module) is None
                   for d in dists if not _installed(d)})


def _installed(dist: str) -> bool:
    try:
        importlib.metadata.version(dist)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in (*PRESENT, *NEEDED):
        dist = {"sklearn": "scikit-learn", "yaml": "PyYAML"}.get(name, name)
        out[name] = importlib.metadata.version(dist) if _installed(dist) else None
    return out


def install(dists: list[str], wheels: Path) -> None:
    if not dists:
        return
    if not wheels.is_dir():
        raise SystemExit(f"{wheels}: no carried wheels for {', '.join(dists)}; run `make gpu-wheels` "
                         "on a machine with network and carry the folder")
    subprocess.run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-q", "--no-index",
                    "--no-deps", "--find-links", str(wheels), *dists], check=True)


def device() -> dict[str, object]:
    import torch

    cuda = torch.cuda.is_available()
    return {"cuda": cuda, "name": torch.cuda.get_device_name() if cuda else platform.processor() or "cpu",
            "cuda_version": torch.version.cuda, "threads": torch.get_num_threads(),
            "memory_gb": torch.cuda.get_device_properties(0).total_memory / 2**30 if cuda else None}


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_env")
    parser.add_argument("out", type=Path)
    parser.add_argument("--wheels", type=Path, default=Path(".whl"))
    parser.add_argument("--dry-run", action="store_true", help="report what would be installed")
    args = parser.parse_args(argv)
    before = versions()
    todo = missing()
    if not args.dry_run:
        install(todo, args.wheels)
    report = {"python": platform.python_version(), "before": before, "installed": todo,
              "dry_run": args.dry_run, "after": versions(), "device": device()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps({"installed": todo, "device": report["device"]}))
    return report


if __name__ == "__main__":
    main()
