"""Rule finetune_lm: ULMFiT stage 2, the pretrained language model fine-tuned on one task's sequences (genolm.fit)."""

from genolm.fit import fine_tune_language_model
from genolm.runtime import run_step

if __name__ == "__main__":
    run_step(
        fine_tune_language_model,
        snakemake.log[0],
        threads=snakemake.threads,
        language_model=snakemake.input.lm,
        train_tokens=snakemake.input.train,
        valid_tokens=snakemake.input.valid,
        model_settings=dict(snakemake.params.model),
        seed=int(snakemake.wildcards.seed),
        device=snakemake.params.device,
        checkpoint_path=snakemake.output.checkpoint,
        history_path=snakemake.output.history,
    )
