"""The model catalogue: instruct GGUF files, Q4_K_M, each pinned by size and sha256.

Every file comes from its maker's own Hugging Face repository where the maker publishes a GGUF
(Qwen, Hugging Face), else from a well-known quantiser (bartowski, unsloth), at a fixed
revision, so the URL always serves the same bytes. A pull is refused unless the downloaded file
has exactly :attr:`ModelEntry.size` bytes and the sha256 :attr:`ModelEntry.sha256`.

Where the pins come from: this project could not download the files (no internet on the machine
where the catalogue was written), so each size and sha256 below is a value published by others
for that exact file (the Hugging Face LFS pointer ``oid sha256:...`` / ``size`` of the file,
as recorded in public projects' model catalogues, download scripts and benchmark notes, found by
exact-string search over public code). Each entry's comment says which sources; an entry is in
the catalogue only if at least two independent public sources give the same size and sha256.
Left out for want of two agreeing sources: bartowski's Llama-3.2-3B-Instruct-Q4_K_M.gguf (one
source only; unsloth's build of the same model is pinned instead). A wrong pin cannot slip a bad
file through: it only makes ``pull`` refuse the download.

``$VSDCODER_MODELS_BASE_URL`` replaces ``https://huggingface.co`` (a mirror, or a local test
server): the file is fetched from ``BASE/REPO/resolve/REVISION/FILE``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from vsdcoder.errors import UsageError

#: Where files are fetched from unless ``$VSDCODER_MODELS_BASE_URL`` says otherwise.
DEFAULT_BASE_URL = "https://huggingface.co"
BASE_URL_ENV = "VSDCODER_MODELS_BASE_URL"

APACHE = "Apache-2.0"
LLAMA32 = "Llama 3.2 Community License"
QWEN_RESEARCH = "Qwen Research License (non-commercial)"


@dataclass(frozen=True)
class ModelEntry:
    """One downloadable model file.

    Attributes:
        name: What ``--model local/NAME`` and ``vsdcoder models pull NAME`` take.
        title: Human-readable model name.
        repo: Hugging Face repository (``owner/name``).
        revision: The repository commit the file is fetched at.
        file: File name in the repository (kept as the name on disk).
        size: Exact size in bytes.
        sha256: Hex sha256 of the whole file.
        licence: The model's licence (read it before use; some restrict use).
        licence_url: Where the licence text is.
        note: One line on what the model is good for.
    """

    name: str
    title: str
    repo: str
    revision: str
    file: str
    size: int
    sha256: str
    licence: str
    licence_url: str
    note: str = ""

    def url(self, base_url: str | None = None) -> str:
        """Download URL: ``BASE/REPO/resolve/REVISION/FILE``."""
        base = (base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
        return f"{base}/{self.repo}/resolve/{self.revision}/{self.file}"

    @property
    def source(self) -> str:
        """The repository page at the pinned revision."""
        return f"{DEFAULT_BASE_URL}/{self.repo}/tree/{self.revision}"


def _hf(repo: str, path: str) -> str:
    return f"{DEFAULT_BASE_URL}/{repo}/blob/main/{path}"


CATALOGUE: tuple[ModelEntry, ...] = (
    # Qwen/Qwen2.5-0.5B-Instruct-GGUF @ 9217f5db: 491,400,032 bytes, sha256 74a4da8c...
    # Sources: a phone-app setup note giving the revision-pinned URL, size and sha256; a macOS
    # app's release notes (same revision, size, sha256); an Android app's on-device test
    # asserting the sha256; a speech app's model list hashed locally; LFS metadata copied into
    # a Rust project's plan (all public GitHub files).
    ModelEntry(
        name="qwen2.5-0.5b-instruct", title="Qwen2.5 0.5B Instruct",
        repo="Qwen/Qwen2.5-0.5B-Instruct-GGUF",
        revision="9217f5db79a29953eb74d5343926648285ec7e67",
        file="qwen2.5-0.5b-instruct-q4_k_m.gguf", size=491_400_032,
        sha256="74a4da8c9fdbcd15bd1f6d01d621410d31c6fc00986f5eb687824e7b93d7a9db",
        licence=APACHE, licence_url=_hf("Qwen/Qwen2.5-0.5B-Instruct-GGUF", "LICENSE"),
        note="smallest Qwen; fast on a laptop CPU",
    ),
    # Qwen/Qwen2.5-1.5B-Instruct-GGUF @ 91cad511: 1,117,320,736 bytes, sha256 6a1a2eb6...
    # Sources: a Python setup script pinning REPO/REVISION/MODEL_SIZE/MODEL_SHA; a TypeScript
    # model list with the revision-pinned URL; a Flutter app's model list; benchmark notes that
    # downloaded and hashed the file; LFS metadata in a Rust project's plan.
    ModelEntry(
        name="qwen2.5-1.5b-instruct", title="Qwen2.5 1.5B Instruct",
        repo="Qwen/Qwen2.5-1.5B-Instruct-GGUF",
        revision="91cad51170dc346986eccefdc2dd33a9da36ead9",
        file="qwen2.5-1.5b-instruct-q4_k_m.gguf", size=1_117_320_736,
        sha256="6a1a2eb6d15622bf3c96857206351ba97e1af16c30d7a74ee38970e434e9407e",
        licence=APACHE, licence_url=_hf("Qwen/Qwen2.5-1.5B-Instruct-GGUF", "LICENSE"),
        note="good JSON and instruction following for its size",
    ),
    # Qwen/Qwen2.5-3B-Instruct-GGUF @ 7dabda4d: 2,104,932,768 bytes, sha256 626b4a66...
    # Sources: notes citing the pinned revision's LFS pointer; an Android app's model list with
    # the revision-pinned URL; a provenance record (repo, revision, bytes, sha256); a Rust
    # downloader; a C# model catalogue. Licence: the repository's LICENSE is Qwen Research.
    ModelEntry(
        name="qwen2.5-3b-instruct", title="Qwen2.5 3B Instruct",
        repo="Qwen/Qwen2.5-3B-Instruct-GGUF",
        revision="7dabda4d13d513e3e842b20f0d435c732f172cbe",
        file="qwen2.5-3b-instruct-q4_k_m.gguf", size=2_104_932_768,
        sha256="626b4a6678b86442240e33df819e00132d3ba7dddfe1cdc4fbb18e0a9615c62d",
        licence=QWEN_RESEARCH, licence_url=_hf("Qwen/Qwen2.5-3B-Instruct-GGUF", "LICENSE"),
        note="the most capable entry; its licence forbids commercial use",
    ),
    # Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF @ ebb20151: 491,400,064 bytes, sha256 1d961463...
    # Sources: an Android app's README (revision, sha256, size); a Dockerfile pinning repo,
    # file, revision, sha256 and size; evaluation notes (revision, sha256); a models.yaml and
    # PowerShell installers. The same bytes are what evals/bench/bench_local_models.py measures.
    ModelEntry(
        name="qwen2.5-coder-0.5b-instruct", title="Qwen2.5 Coder 0.5B Instruct",
        repo="Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF",
        revision="ebb2015119c907b064c512bf053e945850b5875f",
        file="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        licence=APACHE, licence_url=_hf("Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF", "LICENSE"),
        note="code-tuned 0.5B; measured in docs/benchmarks.md",
    ),
    # bartowski/Llama-3.2-1B-Instruct-GGUF @ 067b946c: 807,694,464 bytes, sha256 6f85a640...
    # Sources: an acceptance record (revision, size, sha256); a Kotlin catalogue (revision,
    # expectedBytes, sha256); a Dart downloader ("bartowski HF LFS pointer"); a Kotlin model
    # list; benchmark notes; a Rust test using the x-linked-size/x-linked-etag HF headers.
    ModelEntry(
        name="llama-3.2-1b-instruct", title="Llama 3.2 1B Instruct",
        repo="bartowski/Llama-3.2-1B-Instruct-GGUF",
        revision="067b946cf014b7c697f3654f621d577a3e3afd1c",
        file="Llama-3.2-1B-Instruct-Q4_K_M.gguf", size=807_694_464,
        sha256="6f85a640a97cf2bf5b8e764087b1e83da0fdb51d7c9fab7d0fece9385611df83",
        licence=LLAMA32,
        licence_url="https://huggingface.co/meta-llama/Llama-3.2-1B-Instruct/blob/main/LICENSE.txt",
        note="Meta's small model, quantised by bartowski",
    ),
    # unsloth/Llama-3.2-3B-Instruct-GGUF @ e7d0997e: 2,019,377,600 bytes, sha256 6c99cc00...
    # Sources: a Python catalogue "verified against the live Hugging Face API and by
    # downloading and re-hashing" (revision e7d0997e); a Go catalogue (same revision, bytes,
    # sha256); a C# starter-model list; a Kotlin catalogue checked against Content-Length; a
    # Swift and a JavaScript model list.
    ModelEntry(
        name="llama-3.2-3b-instruct", title="Llama 3.2 3B Instruct",
        repo="unsloth/Llama-3.2-3B-Instruct-GGUF",
        revision="e7d0997e49c9cb00d88b4c1a6a16aa894b0bbc31",
        file="Llama-3.2-3B-Instruct-Q4_K_M.gguf", size=2_019_377_600,
        sha256="6c99cc00ae910f6a532a80022cb4bc1939094527a089c29294b841c0bd87f74d",
        licence=LLAMA32,
        licence_url="https://huggingface.co/meta-llama/Llama-3.2-3B-Instruct/blob/main/LICENSE.txt",
        note="Meta's 3B model, quantised by unsloth",
    ),
    # HuggingFaceTB/SmolLM2-1.7B-Instruct-GGUF @ 2d4a76a3: 1,055,609,536 bytes, sha256 decd2598...
    # Sources: a shell build script pinning revision and sha256; a TypeScript catalogue
    # (revision-pinned URL, sha256, bytes); a Rust registry (same); a Python model list (same);
    # a Rust catalogue; a JavaScript test pinning size and sha256.
    ModelEntry(
        name="smollm2-1.7b-instruct", title="SmolLM2 1.7B Instruct",
        repo="HuggingFaceTB/SmolLM2-1.7B-Instruct-GGUF",
        revision="2d4a76a30b4af41ecd395c35725ac11688d4cfe4",
        file="smollm2-1.7b-instruct-q4_k_m.gguf", size=1_055_609_536,
        sha256="decd2598bc2c8ed08c19adc3c8fdd461ee19ed5708679d1c54ef54a5a30d4f33",
        licence=APACHE,
        licence_url="https://huggingface.co/HuggingFaceTB/SmolLM2-1.7B-Instruct",
        note="the bigger sibling of the embedded SmolLM2-135M; open training data",
    ),
)


def entries() -> tuple[ModelEntry, ...]:
    """The catalogue (read at call time, so tests can replace :data:`CATALOGUE`)."""
    return CATALOGUE


def names() -> list[str]:
    """Names of the catalogue entries."""
    return [e.name for e in entries()]


def find(name: str) -> ModelEntry | None:
    """The entry called ``name`` (case-insensitive), or None."""
    key = name.strip().lower()
    for e in entries():
        if e.name == key:
            return e
    return None


def get(name: str) -> ModelEntry:
    """The entry called ``name``.

    Raises:
        UsageError: No such entry (the message lists the names).
    """
    entry = find(name)
    if entry is None:
        from vsdcoder.suggest import did_you_mean

        raise UsageError(f"unknown model '{name}'{did_you_mean(name, names())}; the catalogue has: "
                         f"{', '.join(names())} "
                         "(see 'vsdcoder models list')")
    return entry
