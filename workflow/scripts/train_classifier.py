"""Rule train_classifier: one classifier on one task with one seed (genolm.fit)."""

from genolm.fit import fit_classifier
from genolm.runtime import run_step

if __name__ == "__main__":
    run_step(
        fit_classifier,
        snakemake.log[0],
        threads=snakemake.threads,
        train_tokens=snakemake.input.train,
        valid_tokens=snakemake.input.valid,
        model_settings=dict(snakemake.params.model),
        seed=int(snakemake.wildcards.seed),
        device=snakemake.params.device,
        language_model=snakemake.input.lm or None,
        checkpoint_path=snakemake.output.checkpoint,
        history_path=snakemake.output.history,
        config_path=snakemake.output.config,
        task=dict(snakemake.params.task),
    )
