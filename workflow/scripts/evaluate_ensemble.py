"""Rule evaluate_ensemble: one model's seeds averaged into one classifier, evaluated like a run (genolm.evaluate)."""

from genolm.evaluate import evaluate_ensemble
from genolm.runtime import run_step

if __name__ == "__main__":
    run_step(
        evaluate_ensemble,
        snakemake.log[0],
        prediction_paths=list(snakemake.input.predictions),
        predictions_path=snakemake.output.predictions,
        metrics_path=snakemake.output.metrics,
        task=snakemake.wildcards.task,
        model_name=snakemake.wildcards.model,
        seed=0,
        threshold_metric=snakemake.params.threshold_metric,
        bootstrap=snakemake.params.bootstrap,
    )
