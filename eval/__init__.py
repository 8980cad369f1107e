"""eval: compare base / few-shot / RAG / fine-tune / both on the same questions, and report.

Public API (import is light: heavy modules load on first attribute access)
------------------------------------------------------------------------------
Metrics (answers on a 0-1 scale per question; aggregates report EM/F1/... in percent like SQuAD):
    normalize_answer(s) -> str                      SQuAD v1.1 official normalisation
    exact_match(prediction, golds) -> float         max over gold answers (official script)
    token_f1(prediction, golds) -> float            max over gold answers (official script)
    rouge_l(prediction, golds) -> float             ROUGE-L F (rouge-score), max over golds
    answer_contained(prediction, golds) -> float    a normalised gold occurs in the prediction, which does
                                                    not list many candidates (the guard: eval/answers.py)
    grounding(prediction, passages) -> dict         {"supported": 0/1, "support": token share in passages}
    squad_scores(dataset_json, predictions) -> {"exact_match", "f1"}   evaluate-v1.1.py equivalent
    retrieval_metrics(qrels, run, ks=(1,5,10,100)) -> per-query dict   pytrec_eval (BEIR's way)
    doc_scores(passages) -> {doc_id: score}         BEIR max-score aggregation of chunks per document
    paired_bootstrap(a, b, n_resamples=1000, seed=0) -> {"diff","low","high","n"}

Systems under test:
    SystemSpec(name, model=None, url=None, retrieval=False, top_k=4, index=None, retriever=None,
               index_version=None, fewshot=0, fewshot_seed=0, system_prompt=None, api_key=None,
               max_tokens=32, base_model=None)
      - `model`: a Hugging Face model folder, generated in-process via serve.load_generator;
      - `url`:   a running `ragtune serve` base URL (http://host:port), queried with the openai client
                 (black box; retrieval on/off and top_k go through its extension fields); `model` may be
                 given too: it is then only read for its hash and ragtune.json (training time, params);
      - `retrieval=True` needs `index` (in-process) or a server that has one (url).
    parse_systems("base,rag,ft,ft+rag", base_model=..., ft_model=..., index=...) / load_systems_yaml(path)

Running and reporting:
    run_comparison(qa, systems, *, out_dir, train_qa=None, split="test", seed=0,
                   n_resamples=1000, batch_size=8, progress=True, resume=True,
                   metric=None, judge=None) -> dict
        qa: path or list[QAExample]; systems: list[SystemSpec | dict]. Generates (or reuses cached
        predictions in out_dir/predictions/<split>/<system>.jsonl: an interrupted run resumes), scores,
        and returns a JSON-ready results dict. Questions that carry `stale_answers` are freshness
        questions: the result counts who answers new vs stale. Call it again after an index refresh
        with split="freshness" and the update's QA, then merge. `metric` (em, f1, contains, judge;
        default contains) is recorded in results["config"] as the verdict's; `judge` (a Judge) grades
        every reply.
    Judge(url_or_folder, api_key=None, cache_dir=None)   a judge model (eval/judge.py)
    forgetting(ft_model, base_model, general_qa, *, seed=0, n_resamples=1000, batch_size=8,
               max_tokens=32, progress=True) -> dict     (merge as {"forgetting": result})
    forgetting_of({name: ft_model}, base_model, general_qa, ...) -> list[dict]   each fine-tune against
                                                    the one base (scored once); merge as {"forgetting": list}
    GENERAL_QA                                      the 50 general-knowledge questions shipped with eval
    merge_results(*results) -> dict                 one report from several runs (test, freshness, forgetting)
    score_predictions(qa, predictions) -> dict      what `ragtune eval score` prints
    write_report(results, out_dir, metric=None) -> dict[str, Path]   report.md, report.html,
                                                    results.json, disagreements.md; no absolute path
                                                    of the machine in them (eval/report_paths.py)
    compute_verdict(results, metric=None) -> dict   what to deploy per split on `metric` (default:
                                                    results["config"]["metric"], else contains) (best, runner-up, paired CI,
                                                    distinguishable), cost lines; opens the report and is
                                                    written into results.json as `verdict`
    evaluate_beir(beir_dir, index_dir, retriever=None, split="test", ks=(1,10,100)) -> dict

Typical demo use (systems served over HTTP by serve.start_server):
    systems = [SystemSpec("base", url=base_srv.url), SystemSpec("rag", url=srv.url, retrieval=True)]
    res = run_comparison("test.jsonl", systems, out_dir=out)
    # ... refresh the index (the server hot-swaps) ...
    fresh = run_comparison("update_qa.jsonl", systems, out_dir=out, split="freshness")
    write_report(merge_results(res, fresh), out)
"""

from __future__ import annotations

from ragtune.lazy import lazy_exports

_EXPORTS = {
    "normalize_answer": "eval.squad",
    "exact_match": "eval.squad",
    "token_f1": "eval.squad",
    "squad_scores": "eval.squad",
    "rouge_l": "eval.answers",
    "answer_contained": "eval.answers",
    "grounding": "eval.answers",
    "score_answer": "eval.answers",
    "retrieval_metrics": "eval.ir",
    "doc_scores": "eval.ir",
    "aggregate_retrieval": "eval.ir",
    "paired_bootstrap": "eval.stats",
    "bootstrap_mean": "eval.stats",
    "SystemSpec": "eval.systems",
    "parse_systems": "eval.systems",
    "load_systems_yaml": "eval.systems",
    "run_comparison": "eval.compare",
    "merge_results": "eval.compare",
    "score_predictions": "eval.compare",
    "forgetting": "eval.forget",
    "forgetting_of": "eval.forget",
    "GENERAL_QA": "eval.forget",
    "write_report": "eval.report",
    "compute_verdict": "eval.verdict",
    "Judge": "eval.judge",
    "evaluate_beir": "eval.beir",
    "load_beir": "eval.beir",
}

__all__ = tuple(sorted(_EXPORTS))
__getattr__ = lazy_exports(__name__, _EXPORTS)
