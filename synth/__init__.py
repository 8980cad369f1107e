"""synth stage: question-answer pairs from an index's chunks, answer first: spans chosen by rules, a
question written for each (by the generator or a template), checked and split by document.

    from synth import SynthConfig, synthesize
    report = synthesize(SynthConfig(index="idx", out_dir="qa", generator="default"))

Where it sits (shared/DESIGN.md): it reads an index through `retriever` and generates through `serve`'s
in-process Generator, like eval does; what it writes (QA .jsonl with doc_ids and context) is input to
`tuner` and `eval`, which never import it. Importing this package loads neither torch nor transformers.
"""

from synth.checks import DROP_REASONS, NearDuplicates, check_pair, find_span, split_documents
from synth.config import SynthConfig
from synth.pipeline import OUTPUT_FILES, REPORT_FILE, synthesize
from synth.progress import PROGRESS_FILE, READ_BACK_FILE
from synth.prompt import PROMPT_VERSION, build_prompt, parse_question, question_problem
from synth.report import SynthReport
from synth.spans import Span, candidate_spans, pick_spans
from synth.template import TEMPLATE_VERSION, template_question
from synth.writers import WRITERS

__all__ = [
    "DROP_REASONS",
    "OUTPUT_FILES",
    "PROGRESS_FILE",
    "PROMPT_VERSION",
    "READ_BACK_FILE",
    "REPORT_FILE",
    "TEMPLATE_VERSION",
    "WRITERS",
    "NearDuplicates",
    "Span",
    "SynthConfig",
    "SynthReport",
    "build_prompt",
    "candidate_spans",
    "check_pair",
    "find_span",
    "parse_question",
    "pick_spans",
    "question_problem",
    "split_documents",
    "synthesize",
    "template_question",
]
