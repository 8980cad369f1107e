"""synth stage: question-answer pairs written from an index's chunks by a generator, checked and split.

    from synth import SynthConfig, synthesize
    report = synthesize(SynthConfig(index="idx", out_dir="qa", generator="default"))

Where it sits (shared/DESIGN.md): it reads an index through `retriever` and generates through `serve`'s
in-process Generator, like eval does; what it writes (QA .jsonl with doc_ids and context) is input to
`tuner` and `eval`, which never import it. Importing this package loads neither torch nor transformers.
"""

from synth.checks import DROP_REASONS, NearDuplicates, check_pair, find_span, split_documents
from synth.config import SynthConfig
from synth.pipeline import OUTPUT_FILES, REPORT_FILE, SynthReport, synthesize
from synth.progress import PROGRESS_FILE, READ_BACK_FILE
from synth.prompt import PROMPT_VERSION, build_prompt, parse_pair

__all__ = [
    "DROP_REASONS",
    "OUTPUT_FILES",
    "PROGRESS_FILE",
    "PROMPT_VERSION",
    "READ_BACK_FILE",
    "REPORT_FILE",
    "NearDuplicates",
    "SynthConfig",
    "SynthReport",
    "build_prompt",
    "check_pair",
    "find_span",
    "parse_pair",
    "split_documents",
    "synthesize",
]
