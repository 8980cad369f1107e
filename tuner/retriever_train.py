"""Fine-tune the retriever: LoRA on a sentence-transformers model with MultipleNegativesRankingLoss.

In-batch negatives come free with the loss; hard negatives are mined from the index with the base
encoder. Recall@k on a document-level validation split is measured before and after, with both
encoders scoring the same chunks in memory, so the two numbers are comparable. The result is merged
into an ordinary sentence-transformers folder (plus the adapter under `adapter/`), which
`ragtune ingest --full --retriever DIR` uses to re-embed the index.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ragtune.artifacts import write_artifact
from ragtune.errors import RagtuneError
from ragtune.hashing import data_hash
from ragtune.records import load_qa
from tuner.retriever_data import ChunkTable, check_gold, doc_recall, mine_triples, split_by_document

log = logging.getLogger(__name__)

LORA_TARGETS = ["query", "key", "value", "dense"]  # BERT-family names (MiniLM, BGE, E5, ...)


@dataclass
class RetrieverTrainResult:
    out_dir: str
    base: str
    recall_k: int
    recall_before: float
    recall_after: float
    n_train: int
    n_val: int
    steps: int
    train_seconds: float
    trainable_params: int
    total_params: int
    rebuild_command: str

    def summary(self) -> str:
        return (
            f"retriever saved to {self.out_dir}\n"
            f"  validation recall@{self.recall_k} ({self.n_val} questions): "
            f"{self.recall_before:.3f} before -> {self.recall_after:.3f} after\n"
            f"  {self.n_train} training questions, {self.steps} steps in {self.train_seconds:.1f} s, "
            f"{self.trainable_params:,} of {self.total_params:,} parameters trained (LoRA)\n"
            f"  This encoder no longer matches the index's fingerprint. Re-embed the index with:\n"
            f"    {self.rebuild_command}"
        )


def load_chunk_table(index_dir: str | Path, new_retriever: str | Path) -> tuple[ChunkTable, str]:
    """Every chunk of the index's current version, and the command that re-embeds it with `new_retriever`."""
    from retriever import KnowledgeIndex

    with KnowledgeIndex.open(index_dir) as index:
        rows = list(index.iter_passages())
        rebuild = index.rebuild_command(str(new_retriever))
    return ChunkTable([r.chunk_id for r in rows], [r.doc_id for r in rows], [r.text for r in rows]), rebuild


def train_retriever(
    data: str | Path,
    index_dir: str | Path,
    out_dir: str | Path,
    *,
    base: str | None = None,
    epochs: int = 1,
    batch_size: int = 16,
    learning_rate: float = 2e-4,
    hard_negatives: int = 1,
    lora_r: int = 8,
    val_fraction: float = 0.2,
    seed: int = 0,
    recall_k: int = 10,
    retrieval: str = "dense",
) -> RetrieverTrainResult:
    """Train, measure and export a retriever; every input is validated before the model loads."""
    hyper = {
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "hard_negatives": hard_negatives,
        "lora_r": lora_r,
        "val_fraction": val_fraction,
        "seed": seed,
    }
    train, val, table, rebuild = _load_inputs(data, index_dir, out_dir, hyper)
    import torch

    from retriever import DEFAULT_MODEL_NAME, Encoder, default_model_dir

    torch.manual_seed(seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    encoder = Encoder(base, device=device, engine="torch")  # the model that trains
    # record a portable base: the embedded model by name, any other by its absolute path
    base_name = (
        DEFAULT_MODEL_NAME if encoder.model_dir == default_model_dir() else str(encoder.model_dir.resolve())
    )
    # measuring and mining use the fastest engine here (same vectors), not the training copy
    lexical = (
        lexical_rows(index_dir, [q.question for q in train], table, retrieval) if hard_negatives else None
    )
    recall_before, triples = _measure_and_mine(
        Encoder(base, device=device), train, val, table, recall_k, hard_negatives, lexical, retrieval
    )
    out = Path(out_dir)
    steps, train_seconds, trainable, total = _train_and_save(
        encoder.model, triples, out, base_name, lora_r, epochs, batch_size, learning_rate, seed
    )
    tuned = Encoder(out, device=device) if val else None  # no validation split: nothing to encode
    recall_after = _measure_and_mine(tuned, [], val, table, recall_k, 0)[0]
    result = RetrieverTrainResult(
        str(out), base_name, recall_k, recall_before, recall_after, len(train), len(val), steps,
        train_seconds, trainable, total, rebuild,
    )  # fmt: skip
    metrics = {k: v for k, v in asdict(result).items() if k not in ("out_dir", "base", "rebuild_command")}
    write_artifact(out, kind="retriever", base_model=base_name, method="lora", data_hash=data_hash([data]),
                   hyperparameters=hyper, metrics=metrics)  # fmt: skip
    return result


def _load_inputs(data, index_dir, out_dir, hyper: dict) -> tuple[list, list, ChunkTable, str]:
    """Check the settings, load the QA data and the index's chunks, split by document: (train, val, table, rebuild)."""
    if hyper["epochs"] < 1 or hyper["batch_size"] < 2 or hyper["lora_r"] < 1 or hyper["hard_negatives"] < 0:
        raise RagtuneError(
            "need --epochs >= 1, --batch-size >= 2 (in-batch negatives), --lora-r >= 1, --hard-negatives >= 0"
        )
    examples = load_qa(data)
    table, rebuild = load_chunk_table(index_dir, out_dir)
    check_gold(examples, table, str(data))
    train, val = split_by_document(examples, hyper["val_fraction"], hyper["seed"])
    if len(train) < 2:
        raise RagtuneError(
            f"{data}: {len(train)} training question(s) after the split; the loss needs at least 2"
        )
    return train, val, table, rebuild


def lexical_rows(index_dir, questions: list[str], table: ChunkTable, kind: str, depth: int = 100):
    """For bm25 or hybrid mining: each question's best BM25 chunks as table rows (None for dense)."""
    import numpy as np

    from retriever import KnowledgeIndex, RetrievalMode

    if kind == "dense":
        return None
    row = {c: n for n, c in enumerate(table.chunk_ids)}
    with KnowledgeIndex.open(index_dir) as index:
        RetrievalMode(kind).resolve(index.has_lexical, str(index_dir))  # LexicalMissing says how to add it
        hits = index.lexical_ids(questions, depth)
        return [np.asarray([row[p.chunk_id] for p in index.passages_for(i, s)], np.int64) for i, s in hits]


def _measure_and_mine(
    encoder,
    train: list,
    val: list,
    table: ChunkTable,
    recall_k: int,
    hard_negatives: int,
    lexical: list | None = None,
    kind: str = "dense",
) -> tuple[float, list]:
    """Validation recall@k of `encoder` and (for `train`) triples with hard negatives mined by it."""
    if not val and not train:
        return float("nan"), []
    log.info("encoding %d chunks with %s", len(table.texts), encoder)
    chunks = encoder.encode(table.texts)
    recall = doc_recall(val, encoder.encode([q.question for q in val]), chunks, table, recall_k)
    triples = (
        mine_triples(
            train, encoder.encode([q.question for q in train]), chunks, table, hard_negatives, lexical, kind
        )
        if train
        else []
    )
    return recall, triples


def _train_and_save(
    model,
    triples: list,
    out: Path,
    base_name: str,
    lora_r: int,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
) -> tuple[int, float, int, int]:
    """LoRA-train the SentenceTransformer, save the adapter and the merged model; (steps, seconds, params)."""
    out.mkdir(parents=True, exist_ok=True)
    peft_model, trainable, total = _attach_lora(model, lora_r, seed)
    t0 = time.perf_counter()
    steps = _fit(model, triples, epochs, batch_size, learning_rate, seed)
    train_seconds = time.perf_counter() - t0
    peft_model.save_pretrained(out / "adapter")
    _make_adapter_portable(out / "adapter", base_name)
    model[0].model = peft_model.merge_and_unload()
    model.save(str(out))
    return steps, train_seconds, trainable, total


def _attach_lora(model, r: int, seed: int):
    from peft import LoraConfig, TaskType, get_peft_model

    inner = model[0].model
    names = {n.rsplit(".", 1)[-1] for n, _ in inner.named_modules()}
    targets = [t for t in LORA_TARGETS if t in names]
    if not targets:
        raise RagtuneError(
            f"the base encoder has none of the LoRA target modules {LORA_TARGETS}; use a BERT-family model"
        )
    cfg = LoraConfig(
        task_type=TaskType.FEATURE_EXTRACTION,
        r=r,
        lora_alpha=2 * r,
        lora_dropout=0.05,
        target_modules=targets,
    )
    peft_model = get_peft_model(inner, cfg)
    model[0].model = peft_model
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in peft_model.parameters())
    return peft_model, trainable, total


def _fit(model, triples, epochs: int, batch_size: int, learning_rate: float, seed: int) -> int:
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.losses import MultipleNegativesRankingLoss
    from sentence_transformers.training_args import BatchSamplers
    from transformers import PrinterCallback

    from ragtune.logs import library_output
    from tuner.runtime import quiet_progress_callback

    n_neg = min(len(t.negatives) for t in triples)
    columns = {"anchor": [t.question for t in triples], "positive": [t.positive for t in triples]}
    for i in range(n_neg):
        columns[f"negative_{i + 1}"] = [t.negatives[i] for t in triples]
    with tempfile.TemporaryDirectory(prefix="ragtune-retriever-") as tmp:
        args = SentenceTransformerTrainingArguments(
            output_dir=tmp,
            num_train_epochs=epochs,
            per_device_train_batch_size=min(batch_size, len(triples)),
            learning_rate=learning_rate,
            warmup_steps=0.1,  # a float is a ratio (warmup_ratio is deprecated in transformers 5)
            seed=seed,
            data_seed=seed,
            batch_sampler=BatchSamplers.NO_DUPLICATES,  # a duplicate in a batch would be a false negative
            save_strategy="no",
            report_to="none",
            logging_steps=10,
            dataloader_pin_memory=False,
            disable_tqdm=True,  # one bar with the loss (quiet_progress_callback), no printed log dicts
        )
        with library_output():  # its model card's "Computing widget examples" bar is not a ragtune step
            trainer = SentenceTransformerTrainer(
                model=model,
                args=args,
                train_dataset=Dataset.from_dict(columns),
                loss=MultipleNegativesRankingLoss(model),
                callbacks=[quiet_progress_callback()],
            )
        trainer.remove_callback(PrinterCallback)
        trainer.train()
        return trainer.state.global_step


def _make_adapter_portable(adapter_dir: Path, base_name: str) -> None:
    """peft writes the base model's absolute path; record the portable name instead."""
    cfg_path = adapter_dir / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["base_model_name_or_path"] = base_name
    cfg_path.write_text(json.dumps(cfg, indent=2))
