"""The general data the tiny base model learns from: a world disjoint from the demo's target world.

Three kinds of examples, all rendered later through the tokenizer's chat template:
- plain text: the general world's documents (language);
- reading: a question with passages in exactly the RAG prompt (`ragtune.prompt.build_messages`), the
  gold passage among distractors, the answer a span copied from the gold passage;
- closed-book: a question with no passages about a small "well-known" subset of the general world,
  so the model also learns to answer without context in the same short form.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from demo import vocab
from demo.world import make_world
from ragtune.prompt import build_messages
from ragtune.records import write_jsonl


def reading_example(
    people, rng: random.Random, max_passages: int = 4, max_questions: int = 1
) -> dict[str, Any]:
    """One RAG-format example: passages (gold + distractors, shuffled) and the copied answer.

    With `max_questions` > 1, up to that many follow-up turns (`Question: ...` → answer) ask about
    the same passages: more answers to learn from per passage token read.
    """
    gold = rng.choice(people)
    attr = rng.choice(vocab.ATTRIBUTES)
    template = rng.randrange(len(vocab.QUESTIONS[attr]))
    k = rng.randint(1, max_passages)
    passages = [gold] + rng.sample(people, k - 1)
    # no duplicate of the gold among distractors
    passages = [gold] + [p for p in passages[1:] if p.id != gold.id]
    rng.shuffle(passages)
    docs = [{"title": p.name, "text": p.document()["text"]} for p in passages]
    question = vocab.QUESTIONS[attr][template].format(name=gold.name)
    messages = build_messages(question, docs)
    messages.append({"role": "assistant", "content": gold.attrs[attr]})
    for _ in range(rng.randint(1, max_questions) - 1):
        p, a = rng.choice(passages), rng.choice(vocab.ATTRIBUTES)
        q = vocab.QUESTIONS[a][rng.randrange(len(vocab.QUESTIONS[a]))].format(name=p.name)
        messages += [
            {"role": "user", "content": f"Question: {q}"},
            {"role": "assistant", "content": p.attrs[a]},
        ]
    return {"messages": messages, "gold_text": gold.document()["text"]}


def closed_book_example(people, rng: random.Random) -> dict[str, Any]:
    p = rng.choice(people)
    attr = rng.choice(vocab.ATTRIBUTES)
    question = vocab.QUESTIONS[attr][rng.randrange(len(vocab.QUESTIONS[attr]))].format(name=p.name)
    messages = build_messages(question)
    messages.append({"role": "assistant", "content": p.attrs[attr]})
    return {"messages": messages}


def general_corpus(
    out_dir: str | Path,
    *,
    n_people: int = 3000,
    n_heldout: int = 200,
    n_reading: int = 20000,
    n_closed_book: int = 3000,
    n_known: int = 100,
    max_passages: int = 4,
    max_questions: int = 1,
    seed: int = 0,
) -> list[Path]:
    """Write `text.jsonl` (documents) and `chat.jsonl` (reading + closed-book chats); return both paths.

    Also writes `heldout.jsonl`: reading examples about `n_heldout` people the corpus never mentions
    (messages without the answer, plus `answer`), to measure copy-from-context on unseen facts.
    """
    world = make_world(n_people + n_heldout, seed=seed, kind="general")
    train_people, heldout_people = world.people[:n_people], world.people[n_people:]
    rng = random.Random(f"general-corpus:{seed}")
    known = train_people[:n_known]
    chats = [
        {"messages": reading_example(train_people, rng, max_passages, max_questions)["messages"]}
        for _ in range(n_reading)
    ]
    chats += [closed_book_example(known, rng) for _ in range(n_closed_book)]
    rng.shuffle(chats)
    out = Path(out_dir)
    text_path, chat_path = out / "text.jsonl", out / "chat.jsonl"
    write_jsonl(text_path, [{"text": p.document()["text"]} for p in train_people])
    write_jsonl(chat_path, chats)
    held = [reading_example(heldout_people, rng, max_passages) for _ in range(n_heldout)]
    write_jsonl(
        out / "heldout.jsonl",
        [
            {
                "messages": h["messages"][:-1],
                "answer": h["messages"][-1]["content"],
                "gold_text": h["gold_text"],
            }
            for h in held
        ],
    )
    return [text_path, chat_path]
