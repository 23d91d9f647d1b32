"""Rule evaluate_baselines: majority-class and GC-content baselines on a task's test split (genolm.evaluate)."""

from pathlib import Path

from genolm.evaluate import evaluate_baselines
from genolm.runtime import run_step

if __name__ == "__main__":
    run_step(
        evaluate_baselines,
        snakemake.log[0],
        tables={Path(path).stem: path for path in snakemake.input.tables},
        metrics_path=snakemake.output.metrics,
        task=snakemake.wildcards.task,
        seed=int(snakemake.params.seed),
        threshold_metric=snakemake.params.threshold_metric,
        bootstrap=int(snakemake.params.bootstrap),
    )
