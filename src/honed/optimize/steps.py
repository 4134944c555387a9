"""From plan steps to experiment variants: each step's prompt derived and pushed, its model resolved,
and a `finetune` step's model trained (or a finished identical job reused) before any step is run.

Steps are resolved in order because each builds on the one before: a step's prompt is the previous
step's derived prompt (or the file it names) with its own `few_shot` / `retrieve` changes applied (or the
prompt its `optimize` search chose from that; see `honed.optimize.search_step`), and its model is the
previous step's (or the one it names, or the model its fine-tuning produced).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from honed.errors import HonedError, InvalidInputError
from honed.experiments.spec import prompt_for
from honed.hashing import content_hash
from honed.optimize.derive import last_user, with_context, with_few_shot, without_few_shot
from honed.prompts import push
from honed.prompts.spec import Prompt, RetrieveStep
from honed.prompts.template import render
from honed.run.render import Renderer

if TYPE_CHECKING:
    from honed.datasets import Case, DatasetVersion
    from honed.finetune.jobs import FinetuneJob
    from honed.optimize.plan import FewShot, FinetuneStep, LadderPlan, Retrieve, Step
    from honed.workspace import Workspace

__all__ = ["Resolved", "apply_changes", "check_finetuning", "resolve_steps", "training_examples"]

Notify = Callable[[str], None]


@dataclass(frozen=True)
class Resolved:
    """A step ready to run: the stored prompt version (`ref`), the model and params, what the step
    changed in words, its fine-tuning job when it trained one and its prompt search when it ran one."""

    step: Step
    prompt: Prompt
    ref: str
    model: str
    params: dict[str, Any]
    changes: list[str] = field(default_factory=list)
    finetune: dict[str, Any] | None = None
    search: dict[str, Any] | None = None


def apply_changes(
    prompt: Prompt,
    *,
    few_shot: FewShot | str | None,
    retrieve: Retrieve | str | None,
    dataset: DatasetVersion,
    target: str,
) -> tuple[Prompt, list[str]]:
    """`prompt` with a step's few-shot and retrieval changes, and those changes in words."""
    changes: list[str] = []
    if few_shot == "none":
        prompt = without_few_shot(prompt)
        changes.append("few-shot: none")
    elif few_shot is not None:
        assert not isinstance(few_shot, str)
        prompt = with_few_shot(prompt, few_shot, dataset, target=target)
        if not dataset.split(few_shot.split):
            raise InvalidInputError(
                f"few_shot: dataset {dataset.ref} has no cases in split {few_shot.split!r}",
                hint=f"splits: {', '.join(sorted(dataset.split_counts())) or 'none'}",
            )
        changes.append(f"few-shot: {few_shot.k} {few_shot.select} cases of {few_shot.split}")
    if retrieve == "none":
        prompt = prompt.model_copy(update={"retrieve": None})
        changes.append("retrieval: none")
    elif retrieve is not None:
        assert not isinstance(retrieve, str)
        step = RetrieveStep(
            kb=retrieve.kb,
            into=retrieve.into,
            query=retrieve.query or prompt.messages[last_user(prompt)].content,
            k=retrieve.k,
            method=retrieve.method,
            alpha=retrieve.alpha,
            max_tokens=retrieve.max_tokens,
            where=retrieve.where,
        )
        prompt = with_context(prompt, step)
        changes.append(
            f"retrieval: {retrieve.k} {retrieve.method} chunks of {retrieve.kb} into {retrieve.into}"
        )
    return prompt, changes


def resolve_steps(
    h: Workspace,
    plan: LadderPlan,
    dataset: DatasetVersion,
    *,
    notify: Notify | None = None,
    n_boot: int = 10_000,
) -> list[Resolved]:
    """Every step of `plan` resolved in order (see the module docstring); prompt searches and
    fine-tuning happen here."""
    out: list[Resolved] = []
    prompt: Prompt | None = None
    model: str | None = None
    for i, step in enumerate(plan.steps):
        where = f"{plan.source}: steps.{i} ({step.id})"
        changes: list[str] = []
        if prompt is None or "prompt" in step.sets:
            _, prompt, _ = prompt_for(h, step.prompt, plan.base, {})
            changes.append(f"prompt: {step.prompt}")
        try:
            prompt, more = apply_changes(
                prompt, few_shot=step.few_shot, retrieve=step.retrieve, dataset=dataset, target=plan.target
            )
        except InvalidInputError as exc:
            raise InvalidInputError(f"{where}: {exc.message}", hint=exc.hint) from None
        changes += more
        if model is None or "model" in step.sets:
            model = step.model or prompt.model or h.settings.default_model
            if "model" in step.sets:
                changes.append(f"model: {model}")
        if "params" in step.sets:
            changes.append("params: " + ", ".join(f"{k}={v}" for k, v in sorted(step.params.items())))
        searched = None
        if step.optimize is not None:
            from honed.optimize.search_step import search_step

            prompt, ref, change, searched = search_step(
                h,
                plan,
                step,
                step.optimize,
                prompt,
                model,
                dataset,
                where=where,
                notify=notify,
                n_boot=n_boot,
            )
            changes.append(change)
        else:
            [pushed] = push(h.store, [prompt], note=f"ladder {plan.name}, step {step.id}")
            ref = f"{prompt.name}@v{pushed.version.number}"
        finetuned = None
        if step.finetune is not None:
            job, reused, n_train = _finetune(h, plan, step, step.finetune, prompt, model, dataset, notify)
            finetuned = {
                "job": job.id,
                "model": job.model,
                "base_model": model,
                "reused": reused,
                "train_examples": n_train,
            }
            model = str(job.model)
            changes.append(f"fine-tuned on {step.finetune.split}: {model}")
        out.append(Resolved(step, prompt, ref, model, dict(step.params), changes, finetuned, searched))
    return out


def check_finetuning(h: Workspace, plan: LadderPlan) -> None:
    """Refuse, before the diagnosis or any step runs, a `finetune` step whose backend cannot train its
    base model here (an endpoint with no fine-tuning API, a missing key): minutes of calls would otherwise
    end in that error. The hint says how to climb the rungs before it."""
    from honed.finetune.registry import get_backend

    model: str | None = None
    for i, step in enumerate(plan.steps):
        if i == 0:
            _, first, _ = prompt_for(h, step.prompt, plan.base, {})
            model = step.model or first.model or h.settings.default_model
        elif "model" in step.sets:
            model = step.model
        if step.finetune is None:
            continue
        if model is not None:  # None: the base is an earlier step's fine-tuned model, not made yet
            try:
                get_backend(_backend(step.finetune, model)).probe(h.settings, model)
            except HonedError as exc:
                hints = [exc.hint] if exc.hint else []
                if i:
                    hints.append(
                        f"or climb the steps before it: honed optimize run {plan.source} "
                        f"--until {plan.steps[i - 1].id}"
                    )
                raise InvalidInputError(
                    f"{plan.source}: step {step.id} cannot fine-tune {model}: {exc.message}",
                    hint="; ".join(hints) or None,
                ) from None
        model = None


def _backend(spec: FinetuneStep, base_model: str) -> str:
    return spec.backend or ("local" if base_model.startswith("local/") else "openai")


def training_examples(
    h: Workspace, prompt: Prompt, cases: list[Case], target: str, *, base: Any = None
) -> list[dict[str, Any]]:
    """One chat example per case: `prompt` as rendered for the case (retrieval included), then `target`
    rendered over the case as the assistant reply."""
    out: list[dict[str, Any]] = []
    with Renderer(h, base=base) as renderer:
        for case in cases:
            if case.reference is None:
                raise InvalidInputError(
                    f"case {case.id!r} has no reference to train on",
                    hint="give every training case a reference",
                )
            messages = renderer.render(prompt, case.inputs, case_id=case.id, gold=case.context_ids).messages
            reply = render(
                target, {**case.inputs, "reference": case.reference}, where=f"target (case {case.id!r})"
            )
            out.append({"messages": [*[dict(m) for m in messages], {"role": "assistant", "content": reply}]})
    return out


def _finetune(
    h: Workspace,
    plan: LadderPlan,
    step: Step,
    spec: FinetuneStep,
    prompt: Prompt,
    base_model: str,
    dataset: DatasetVersion,
    notify: Notify | None,
) -> tuple[FinetuneJob, bool, int]:
    """The finished job that trained `base_model` on this step's data: an identical one already on record
    (finished, or resumed if its worker died), else a new one; waits for it. Returns the job, whether it
    was reused, and the number of training examples."""
    from honed.finetune import FinetuneSpec, create_job, list_jobs
    from honed.finetune.jobs import curve_summary

    say = notify or (lambda _msg: None)
    cases = list(dataset.split(spec.split))
    if not cases:
        raise InvalidInputError(
            f"{plan.source}: step {step.id}: finetune.split {spec.split!r} has no cases in {dataset.ref}",
            hint=f"splits: {', '.join(sorted(dataset.split_counts())) or 'none'}",
        )
    evaluated = {c.id for c in (dataset.split(plan.split) if plan.split else dataset.cases)}
    leaked = sorted(evaluated & {c.id for c in cases})
    if leaked:
        raise InvalidInputError(
            f"{plan.source}: step {step.id}: {len(leaked)} training cases are also evaluated "
            f"({leaked[0]}, ...)",
            hint="set the ladder's `split:` and train on another split",
        )
    train = training_examples(h, prompt, cases, plan.target, base=plan.base)
    validation = None
    if spec.validation_split is not None:
        vcases = list(dataset.split(spec.validation_split))
        validation = training_examples(h, prompt, vcases, plan.target, base=plan.base) or None
    backend = _backend(spec, base_model)
    wanted = FinetuneSpec(
        backend=backend,
        base_model=base_model,
        training=content_hash({"examples": train}),
        validation=content_hash({"examples": validation}) if validation else None,
        hyperparameters=dict(spec.hyperparameters),
        source={"ladder": plan.name, "step": step.id, "dataset": dataset.ref, "split": spec.split},
    )
    for job in list_jobs(h):
        if job.spec != wanted or job.status in ("failed", "cancelled"):
            continue
        # Only what happens from now on is passed on: a reused job's history is in `honed finetune show`.
        seen = max((e["seq"] for e in job.events()), default=0)
        if job.status == "interrupted":
            say(f"step {step.id}: resuming fine-tuning job {job.id} from its last checkpoint")
            job.resume()
        elif job.status != "succeeded":
            say(f"step {step.id}: waiting for fine-tuning job {job.id} ({job.status})")
        else:
            curve = curve_summary(job.events(kind="metric"))
            loss = (
                f", loss {curve['last_loss']:.4g} after {curve['steps']} steps"
                if "last_loss" in curve
                else ""
            )
            say(f"step {step.id}: reusing fine-tuning job {job.id} ({job.model}{loss})")
        _follow(job, say, after=seen)
        return job.refresh(), True, len(train)
    job = create_job(h, FinetuneSpec(**{**wanted.to_dict(), "training": ""}), train, validation)
    say(f"step {step.id}: fine-tuning {base_model} on {len(train)} examples ({backend}), job {job.id}")
    _follow(job, say)
    return job.refresh(), False, len(train)


def _follow(job: FinetuneJob, say: Notify, *, after: int = 0) -> None:
    """Wait for `job`, passing its training metrics after event `after` on as they arrive; a failed job
    raises."""
    import time

    seq = after
    while True:
        done = job.done()
        for event in job.events(seq):
            seq = event["seq"]
            data = event.get("data") or {}
            if event["kind"] == "metric" and data.get("step") is not None:
                values = ", ".join(
                    f"{k} {v:.4g}" if isinstance(v, int | float) else f"{k} {v}"
                    for k, v in data.items()
                    if k != "step"
                )
                say(f"  job {job.id} step {data['step']}: {values}")
        if done:
            break
        time.sleep(1.0)
    job.result()
