"""Rule embed_classifier: test-set embeddings of a classifier (npz and id/label/group table) and their t-SNE
projection with labels and groups (genolm.embeddings)."""

from genolm.embeddings import export_embeddings
from genolm.runtime import run_step

if __name__ == "__main__":
    run_step(
        export_embeddings,
        snakemake.log[0],
        threads=snakemake.threads,
        checkpoint=snakemake.input.checkpoint,
        tokens=snakemake.input.test,
        embeddings_path=snakemake.output.embeddings,
        projection_path=snakemake.output.projection,
        seed=int(snakemake.params.seed),
        max_points=int(snakemake.params.max_points),
        device=snakemake.params.device,
        task_table=snakemake.input.task_table,
        table_path=snakemake.output.table,
        annotation=snakemake.input.get("annotation"),
    )
