"""Rule build_report: the self-contained HTML report of the whole run (genolm.report)."""

import os

from genolm.report import build_report
from genolm.runtime import run_step

if __name__ == "__main__":
    run_step(
        build_report,
        snakemake.log[0],
        metrics_path=snakemake.input.metrics,
        published_path=snakemake.input.published,
        html_path=snakemake.output.html,
        figures_dir=snakemake.output.figures,
        runs=list(snakemake.params.runs),
        language_models=list(snakemake.params.language_models),
        scans=list(snakemake.params.scans),
        config=dict(snakemake.params.config),
        region=dict(snakemake.params.region),
        dataset_summary_paths=list(snakemake.input.datasets),
        overlap_path=snakemake.input.overlap,
        timing_paths=list(snakemake.input.timings),
        data_files=list(snakemake.input.data),
        amr=list(snakemake.params.amr),
        reads=list(snakemake.params.reads),
        homology=list(snakemake.params.homology),
        embeddings=list(snakemake.params.embeddings),
        interpret=list(snakemake.params.interpret),
        language=list(snakemake.params.language),
        exports=list(snakemake.params.exports),
        markdown_paths=[path for key, path in snakemake.output.items() if key.startswith("markdown")],
        command=os.environ.get("GENOLM_COMMAND", ""),
        configfiles=os.environ.get("GENOLM_CONFIGFILES", "").split(),
        benchmark_dir="benchmarks",
    )
