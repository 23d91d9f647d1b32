"""Rule evaluate_model_ensemble: several models' probabilities averaged into one classifier (genolm.evaluate)."""

from genolm.evaluate import evaluate_model_ensemble
from genolm.runtime import run_step

if __name__ == "__main__":
    run_step(
        evaluate_model_ensemble,
        snakemake.log[0],
        member_runs={model: list(paths) for model, paths in snakemake.params.members.items()},
        predictions_path=snakemake.output.predictions,
        metrics_path=snakemake.output.metrics,
        task=snakemake.wildcards.task,
        ensemble_name=snakemake.wildcards.ensemble,
        threshold_metric=snakemake.params.threshold_metric,
        bootstrap=snakemake.params.bootstrap,
    )
