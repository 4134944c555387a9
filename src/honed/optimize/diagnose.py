"""Diagnosis: is the gap about what the model knows (context) or how it acts (behaviour)?

The prompt is run as it is and under ablations that each remove one kind of gap, all as one experiment
on the same cases, so every effect is a paired difference with a CI and a p-value:

- `oracle-context`: the case's gold documents (its `context_ids`) put in the prompt, as perfect
  retrieval would. Failures that disappear were missing *context*.
- `few-shot` (or `no-few-shot` when the prompt has demonstrations): `k` demonstrations from the dataset
  on or off. What they change in form and content is *behaviour* that showing (not telling) fixes.
- `oracle+few-shot`: both, the prompt's ceiling with the means at hand (when the prompt has no
  demonstrations of its own; otherwise `oracle-context` already is that).

The failing results of the prompt as it is are split into right-content-wrong-form (behaviour), fixed by
gold context (context), and wrong even with gold context (the model does not act on what it is given).

The axis: *context* when gold context raises the content score significantly; *behaviour* when
demonstrations significantly change form or content, or right-content-wrong-form failures are a clear
share of results (Wilson 95% lower bound of at least 5%); *both*, or *neither*. The recommendation follows
the measured effects: few-shot and output constraints for behaviour, retrieval for context, and
fine-tuning when even gold context with demonstrations leaves the primary score below 90%.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from honed.errors import InvalidInputError
from honed.evals.stats import Comparison, wilson_interval
from honed.experiments import analyse, parse_spec, resolve, run_experiment
from honed.optimize.derive import with_context, with_few_shot, without_few_shot
from honed.optimize.ladder import delta, interval
from honed.optimize.steps import resolve_steps
from honed.prompts import push
from honed.prompts.spec import Prompt, RetrieveStep

if TYPE_CHECKING:
    from honed.datasets import DatasetVersion
    from honed.experiments.analysis import RunReport
    from honed.experiments.runner import Progress
    from honed.optimize.plan import LadderPlan
    from honed.workspace import Workspace

__all__ = ["KIND", "Diagnosis", "diagnose_plan", "stored_diagnosis"]

KIND = "ladder-diagnosis"
AS_IS, ORACLE, FEW_SHOT, NO_FEW_SHOT, BOTH = (
    "as-is",
    "oracle-context",
    "few-shot",
    "no-few-shot",
    "oracle+few-shot",
)
#: A share of right-content-wrong-form results whose Wilson lower bound reaches this is behaviour evidence.
FORM_SHARE = 0.05
#: With gold context and demonstrations, a primary mean below this leaves a gap for fine-tuning.
CEILING = 0.9


@dataclass(frozen=True)
class Diagnosis:
    name: str
    run_id: str
    run_status: str
    dataset: str
    split: str | None
    n_cases: int
    prompt: str
    model: str
    correct: str
    format: str | None
    primary: str
    ablations: list[dict[str, Any]]
    effects: list[dict[str, Any]]
    failures: dict[str, Any]
    axis: str
    recommendation: list[dict[str, str]]
    summary: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def diagnose_plan(
    h: Workspace,
    plan: LadderPlan,
    *,
    new: bool = False,
    progress: Progress | None = None,
    n_boot: int = 10_000,
) -> Diagnosis:
    """Run (or resume) the plan's `diagnose:` section and store the diagnosis (see the module docstring)."""
    from honed.datasets import get_dataset

    spec = plan.diagnose
    if spec is None or plan.correct is None:
        raise InvalidInputError(
            f"{plan.source}: the plan has no diagnose: section", hint="add diagnose: {kb: NAME} and correct:"
        )
    pinned = get_dataset(h.store, plan.dataset)
    index = next(i for i, s in enumerate(plan.steps) if s.id == (spec.step or plan.steps[0].id))
    if any(s.finetune is not None for s in plan.steps[: index + 1]):
        raise InvalidInputError(
            f"{plan.source}: diagnose.step: {plan.steps[index].id!r} comes after a fine-tuning step",
            hint="diagnose a prompt step before the fine-tuning",
        )
    upto = dataclasses.replace(plan, steps=plan.steps[: index + 1])
    target = resolve_steps(h, upto, pinned)[-1]
    cases = pinned.split(plan.split) if plan.split else list(pinned.cases)
    gold = sum(1 for c in cases if c.context_ids)
    if not gold:
        raise InvalidInputError(
            f"{plan.source}: diagnose: no case of {pinned.ref} names its gold context",
            hint="give cases context_ids (the documents of the knowledge base that hold the answer)",
        )
    variants = _ablations(target.prompt, plan, pinned)
    name = f"{plan.name}-diagnosis"
    exp_spec = parse_spec(
        {
            "name": name,
            "dataset": pinned.ref,
            "split": plan.split,
            "repeats": plan.repeats,
            "variants": [
                {"id": vid, "prompt": _push(h, p, plan.name), "params": target.params, "model": target.model}
                for vid, p, _ in variants
            ],
            "evaluators": [dict(e) for e in plan.evaluators],
        },
        source=plan.source,
    )
    exp = resolve(h, exp_spec, base=plan.base)
    primary = plan.primary or exp.evaluators[0].name
    run = run_experiment(h, exp, new=new, progress=progress, latency_calls=0)
    diagnosis = _diagnosis(
        h, plan, run.id, target.ref, target.model, primary, variants, n_boot, len(exp.cases)
    )
    h.store.names.record(KIND, plan.name, diagnosis.to_dict(), note=f"run {run.id} ({run.status})")
    return diagnosis


def stored_diagnosis(h: Workspace, name: str, ref: str | None = None) -> dict[str, Any]:
    """The diagnosis last stored for the plan `name`, as `Diagnosis.to_dict()`."""
    _, body = h.store.names.get(KIND, name, ref, noun="ladder diagnosis")
    return body


def _ablations(prompt: Prompt, plan: LadderPlan, pinned: DatasetVersion) -> list[tuple[str, Prompt, str]]:
    """(id, prompt, description) of every ablation of `prompt`."""
    assert plan.diagnose is not None
    fs = plan.diagnose.few_shot
    into = prompt.retrieve[0].into if prompt.retrieve else "context"
    oracle = RetrieveStep(kb=plan.diagnose.kb, mode="gold", into=into)
    has_demos = bool(prompt.examples or prompt.examples_from)
    out = [(AS_IS, prompt, "the prompt as it is")]
    out.append(
        (ORACLE, with_context(prompt, oracle), f"+ each case's gold documents from {plan.diagnose.kb}")
    )
    if has_demos:
        out.append((NO_FEW_SHOT, without_few_shot(prompt), "without its demonstrations"))
    else:
        demos = with_few_shot(prompt, fs, pinned, target=plan.target)
        out.append((FEW_SHOT, demos, f"+ {fs.k} {fs.select} demonstrations from {fs.split}"))
        out.append((BOTH, with_context(demos, oracle), "+ gold documents and demonstrations"))
    return out


def _push(h: Workspace, prompt: Prompt, plan: str) -> str:
    [pushed] = push(h.store, [prompt], note=f"ablation of ladder {plan}'s diagnosis")
    return f"{prompt.name}@v{pushed.version.number}"


def _effect(
    name: str, evaluator: str, variant: str, against: str, c: Comparison, meaning: str
) -> dict[str, Any]:
    return {"name": name, "evaluator": evaluator, "variant": variant, **delta(c, against), "meaning": meaning}


def _diagnosis(
    h: Workspace,
    plan: LadderPlan,
    run_id: str,
    prompt_ref: str,
    model: str,
    primary: str,
    variants: list[tuple[str, Prompt, str]],
    n_boot: int,
    n_cases: int,
) -> Diagnosis:
    correct, form = plan.correct, plan.format
    assert correct is not None
    ids = [v[0] for v in variants]
    report = analyse(h.store, run_id, baseline=AS_IS, n_boot=n_boot)
    on, off = (AS_IS, NO_FEW_SHOT) if NO_FEW_SHOT in ids else (FEW_SHOT, AS_IS)
    shots = report if off == AS_IS else analyse(h.store, run_id, baseline=off, n_boot=n_boot)
    ablations: list[dict[str, Any]] = []
    for vid, _, description in variants:
        quality = {ev: result.summaries[vid].brief() for ev, result in report.stats.items()}
        ablations.append({"id": vid, "description": description, "quality": quality})
    by_id: dict[str, dict[str, Any]] = {a["id"]: a for a in ablations}

    def cmp(rep: RunReport, ev: str, variant: str) -> Comparison:
        return rep.stats[ev].comparisons[variant]

    effects = [
        _effect(
            "context",
            correct,
            ORACLE,
            AS_IS,
            cmp(report, correct, ORACLE),
            "what gold context buys in content",
        )
    ]
    if form is not None:
        effects.append(
            _effect("few-shot", form, on, off, cmp(shots, form, on), "what demonstrations buy in form")
        )
    effects.append(
        _effect("few-shot", correct, on, off, cmp(shots, correct, on), "what demonstrations buy in content")
    )
    if BOTH in ids:
        effects.append(
            _effect(
                "both",
                primary,
                BOTH,
                AS_IS,
                cmp(report, primary, BOTH),
                "gold context and demonstrations together",
            )
        )
    failures = _failures(h, run_id, primary, correct, form)
    ceiling_id = BOTH if BOTH in ids else ORACLE
    ceiling = by_id[ceiling_id]["quality"][primary]
    axis, recommendation = _verdict(effects, failures, ceiling, ceiling_id, primary, form)
    summary = _summary(axis, effects, failures, ceiling, ceiling_id, primary)
    return Diagnosis(
        name=plan.name,
        run_id=run_id,
        run_status=report.run.status,
        dataset=report.run.spec["dataset"]["ref"],
        split=plan.split,
        n_cases=n_cases,
        prompt=prompt_ref,
        model=model,
        correct=correct,
        format=form,
        primary=primary,
        ablations=ablations,
        effects=effects,
        failures=failures,
        axis=axis,
        recommendation=recommendation,
        summary=summary,
    )


def _failures(h: Workspace, run_id: str, primary: str, correct: str, form: str | None) -> dict[str, Any]:
    """The as-is results' failures: right content wrong form / fixed by gold context / wrong even then."""
    runs = h.store.runs
    passed, content = runs.passes(run_id, primary), runs.passes(run_id, correct)
    shape = runs.passes(run_id, form) if form else {}
    keys = sorted(
        {
            (c, s)
            for v, c, s in {
                (r["variant"], r["case_id"], int(r["sample_index"])) for r in runs.results(run_id)
            }
            if v == AS_IS
        }
    )
    counts: Counter[str] = Counter()
    for case, sample in keys:
        key = (AS_IS, case, sample)
        if key not in passed or key not in content:
            counts["error"] += 1
        elif passed[key]:
            counts["ok"] += 1
        elif content[key] and shape.get(key) is False:
            counts["format"] += 1
        elif content.get((ORACLE, case, sample)):
            counts["context"] += 1
        else:
            counts["persistent"] += 1
    n = len(keys)
    out: dict[str, Any] = {"n": n, "failed": n - counts["ok"] - counts["error"]}
    for kind in ("ok", "format", "context", "persistent", "error"):
        ci = wilson_interval(counts[kind], n)
        out[kind] = counts[kind]
        out[f"{kind}_ci"] = interval(ci)
    return out


def _verdict(
    effects: list[dict[str, Any]],
    failures: dict[str, Any],
    ceiling: dict[str, Any],
    ceiling_id: str,
    primary: str,
    form: str | None,
) -> tuple[str, list[dict[str, str]]]:
    context = effects[0]
    shots = [e for e in effects if e["name"] == "few-shot"]
    form_ci = failures.get("format_ci")
    form_share = form is not None and form_ci is not None and form_ci[0] >= FORM_SHARE
    ctx = context["verdict"] == "better"
    helped = [e for e in shots if e["verdict"] == "better"]
    beh = bool(helped) or form_share
    axis = "both" if ctx and beh else "context" if ctx else "behaviour" if beh else "neither"
    rec: list[tuple[float, dict[str, str]]] = []
    if beh:
        why = []
        for e in helped:
            why.append(f"demonstrations change {e['evaluator']} by {_pts(e)}")
        if form_share:
            why.append(
                f"{failures['format']} of {failures['n']} results have the right content in the wrong form"
            )
        gain = max([e["diff"] or 0.0 for e in helped], default=0.0)
        rec.append(
            (gain, {"technique": "few-shot demonstrations and output constraints", "why": "; ".join(why)})
        )
    if ctx:
        rec.append(
            (
                context["diff"] or 0.0,
                {
                    "technique": "retrieval (RAG) or prompt stuffing",
                    "why": f"gold context changes {context['evaluator']} by {_pts(context)}",
                },
            )
        )
    rec.sort(key=lambda r: -r[0])
    out = [r for _, r in rec]
    mean = ceiling["mean"]
    if (ctx or beh) and mean is not None and mean < CEILING:
        out.append(
            {
                "technique": "fine-tuning (on the prompt with its context)",
                "why": f"even {ceiling_id} reaches only {primary} {_mean(ceiling)}: the model does not act "
                "on what it is given",
            }
        )
    unsure = [e for e in effects if _inconclusive(e)]
    if unsure:
        out.append(
            {
                "technique": "more cases, to tell",
                "why": "; ".join(
                    f"{e['meaning']} ({e['evaluator']}) is {_pts(e)} over {e['cases']} cases" for e in unsure
                )
                + ": too few cases for the test to call it",
            }
        )
    elif not out:
        out.append(
            {
                "technique": "more cases, or a stronger model",
                "why": "neither gold context nor demonstrations made a detectable difference on these cases",
            }
        )
    return axis, out


def _inconclusive(e: dict[str, Any]) -> bool:
    """An effect the test did not call although its interval leaves out zero (or its estimate is large):
    with few cases the permutation test cannot reach p < 0.05 (6 paired cases that all improve give p =
    0.03 at best), so "no detectable difference" there is not "no difference"."""
    if e["verdict"] in ("better", "worse") or e["diff"] is None:
        return False
    ci = e["ci"]
    return bool((ci is not None and (ci[0] > 0 or ci[1] < 0)) or abs(e["diff"]) >= 0.2)


def _pts(e: dict[str, Any]) -> str:
    ci = e["ci"]
    text = f"{e['diff']:+.2f}" if e["diff"] is not None else "n/a"
    if ci is not None:
        text += f" [{ci[0]:+.2f}, {ci[1]:+.2f}]"
    if e["p_value"] is not None:
        text += f", p={e['p_value']:.2g}"
    return text


def _mean(q: dict[str, Any]) -> str:
    if q["mean"] is None:
        return "n/a"
    ci = q["ci"]
    return f"{q['mean']:.2f}" + ("" if ci is None else f" [{ci[0]:.2f}, {ci[1]:.2f}]")


def _summary(
    axis: str,
    effects: list[dict[str, Any]],
    failures: dict[str, Any],
    ceiling: dict[str, Any],
    ceiling_id: str,
    primary: str,
) -> str:
    head = {
        "context": "The gap is context: the model lacks knowledge that the gold documents supply.",
        "behaviour": "The gap is behaviour: demonstrations or the output's form account for the failures.",
        "both": "The gap is both context and behaviour.",
        "neither": "Neither axis shows a detectable gap on these cases.",
    }[axis]
    parts = [head]
    for e in effects:
        call = e["verdict"]
        if _inconclusive(e):
            call = f"{call} by the test, but too few cases ({e['cases']}) to call: more cases would tell"
        parts.append(f"{e['meaning'].capitalize()} ({e['evaluator']}): {_pts(e)} ({call}).")
    parts.append(
        f"Of {failures['n']} results of the prompt as it is, {failures['failed']} fail {primary}: "
        f"{failures['format']} right content in the wrong form, {failures['context']} fixed by gold "
        f"context, {failures['persistent']} wrong even with it."
    )
    parts.append(f"With {ceiling_id}, {primary} is {_mean(ceiling)}.")
    return " ".join(parts)
