"""Stage increment: one class-incremental chain of params.yaml `increments` over every later phase
of the task: phase 1's student is distilled from the `teacher` run's final model, each later
phase's from the phase before (fine-tuning, ERD or SD-IDD: `method`, `alpha`, `beta`, `distill`, with the
chain's own `distill` keys over it for a variant).
Each phase is trained (resumable, like the train stage) and evaluated on its validation or test set (`evaluate.split`; all classes
seen so far). The student is detectron_ext/modeling/distill_gfl.py's DistillGFL (pipeline/config.py sets
MODEL.META_ARCHITECTURE); its `distillation_losses` run CR, BR and FR (detectron_ext/distillation/losses.py).

Usage: python stages/increment.py NAME
Outputs: checkpoints/NAME/phaseK/, models/NAME/phaseK/, plots/NAME/phaseK/ (training log,
distillation trace with FR's λ, samples), metrics/NAME.json (the last phase's metrics, and every
phase's under `phases`), metrics/NAME.md.
"""
import sys

import detectron_ext  # noqa: F401,I001  (first: Pillow >= 10 aliases before detectron2.data loads)
from detectron_ext.file_io import atomic_write_json, atomic_write_text
from pipeline.params import load_params, run_stage
from pipeline.runner import evaluate_run, per_class_table, train_run
from pipeline.runs import METRICS, chain_params, chain_variant, increment_specs


def main(name):
    params = load_params()
    variant = chain_variant(params, name)  # a variant's own keys, recorded beside its method
    params = chain_params(params, name)
    phases, tables = {}, []
    for spec in increment_specs(params, name):
        train_run(params, spec)
        phases[spec.phase] = evaluate_run(params, spec)
        tables.append(per_class_table(phases[spec.phase], spec))
    first = phases[min(phases, key=int)]["provenance"]  # the chain's own teacher: phase 1's
    atomic_write_json(METRICS / f"{name}.json", {**phases[spec.phase], "run": name, "phases": phases,
                                                 "chain_teacher": first["teacher"],
                                                 "chain_teacher_sha256": first["teacher_sha256"],
                                                 **({"variant": variant} if variant else {})})
    atomic_write_text(METRICS / f"{name}.md", "\n".join(tables))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    run_stage(main, sys.argv[1])
