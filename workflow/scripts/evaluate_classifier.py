"""Rule evaluate_classifier: threshold on validation, metrics with bootstrap intervals on test (genolm.evaluate)."""

from genolm.evaluate import evaluate_checkpoint
from genolm.runtime import run_step

if __name__ == "__main__":
    run_step(
        evaluate_checkpoint,
        snakemake.log[0],
        threads=snakemake.threads,
        checkpoint=snakemake.input.checkpoint,
        valid_tokens=snakemake.input.valid,
        test_tokens=snakemake.input.test,
        predictions_path=snakemake.output.predictions,
        metrics_path=snakemake.output.metrics,
        task=snakemake.wildcards.task,
        model_name=snakemake.wildcards.model,
        seed=int(snakemake.params.seed),
        threshold_metric=snakemake.params.threshold_metric,
        bootstrap=int(snakemake.params.bootstrap),
        device=snakemake.params.device,
    )
