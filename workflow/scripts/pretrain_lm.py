"""Rule pretrain_lm: ULMFiT stage 1, the AWD-LSTM language model on genome token streams (genolm.fit)."""

from genolm.fit import fit_language_model
from genolm.runtime import run_step

if __name__ == "__main__":
    run_step(
        fit_language_model,
        snakemake.log[0],
        threads=snakemake.threads,
        corpus_paths=list(snakemake.input.corpus),
        model_settings=dict(snakemake.params.model),
        seed=int(snakemake.wildcards.seed),
        device=snakemake.params.device,
        checkpoint_path=snakemake.output.checkpoint,
        history_path=snakemake.output.history,
    )
