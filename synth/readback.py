"""The read-back check: does the question ask for its answer?

After a pair passes the other checks, the same generator answers the generated question from its chunk
alone, through ragtune's own RAG prompt (`ragtune.prompt.build_messages` with the chunk as the one
passage, as `ragtune eval` and the server prompt a model: default system prompt, greedy, the reply
stripped), and the pair is kept only when that read-back answer agrees with the generated one.

Agreement, on SQuAD-normalised text (`ragtune.squad_metric`, the measure eval scores answers with):
- token F1 >= 0.5, the partial-match bar bench/synth_gold.py also uses: with the 1-3 word spans synth
  keeps, it accepts one word more or less ("in 1612" vs "1612": 0.67, "Gustave Eiffel" vs "Eiffel":
  0.67) and rejects another entity ("Selby" vs "Brightwater": 0). Its known leak: two-word answers
  sharing one word ("two bees" vs "three bees") sit exactly on the bar and pass;
- or one contains the other on word boundaries: a reader that answers in a sentence ("Mara Quill was
  born in Brightwater") still names the span, which F1 alone would reject (0.22).
An empty read-back or one that normalises to nothing disagrees.
"""

from __future__ import annotations

import hashlib

from ragtune.prompt import build_messages
from ragtune.records import Passage
from ragtune.squad_metric import normalize_answer, token_f1

READ_BACK_VERSION = "synth-readback-v1"  # the prompt (ragtune-rag-v1, one passage) and reply handling
# Room to reach the span: asked a template question ("X was founded in what year by Y?"), the 135M
# reader restates the sentence with the blank filled, and at 16 tokens a late span was cut off
# ("... the Festival of Britain (1"); docs/synth.md has the figures.
READ_BACK_MAX_TOKENS = 40
MIN_F1 = 0.5


def read_back_key(pair_key: str, question: str) -> str:
    """What a cached read-back depends on: the pair (its generation key covers generator and chunk), the
    question as parsed, and how the read-back is asked."""
    parts = f"{READ_BACK_VERSION}\0{READ_BACK_MAX_TOKENS}\0{pair_key}\0{question}"
    return hashlib.sha256(parts.encode()).hexdigest()[:24]


def read_back_prompt(question: str, chunk: Passage) -> list[dict[str, str]]:
    """The RAG prompt eval and serve use, with the chunk as the only passage."""
    return build_messages(question, [chunk])


def agrees(read: str | None, answer: str) -> bool:
    """Does the read-back answer name the generated answer (token F1 >= 0.5 or containment)?"""
    r, a = normalize_answer(read or ""), normalize_answer(answer)
    if not r or not a:
        return False
    return token_f1(r, a) >= MIN_F1 or f" {a} " in f" {r} " or f" {r} " in f" {a} "
