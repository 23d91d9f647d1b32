rule build_report:
    input:
        metrics="results/tables/metrics.tsv",
        published="results/tables/published_comparison.tsv",
        summary="results/tables/summary.tsv",
        datasets=dataset_summaries(),
        overlap="results/tables/dataset_overlap.tsv",
        predictions=[run["predictions"] for run in report_runs()],
        histories=[run["history"] for run in report_runs()],
        lm_histories=[entry["history"] for entry in report_language_models()],
        scans=[scan["scores"] for scan in report_scans()],
        evaluations=scan_evaluations(),
        context=promoter_context_evaluations(),
        timings=report_timings(),
        data=report_data_files(),
        amr=report_amr_files(),
        reads=[entry["summary"] for entry in report_reads()],
        homology=report_homology_files(),
        embeddings=[entry["projection"] for entry in report_embeddings()],
        interpret=report_interpret_files(),
        language=report_lm_files(),
        exports=report_export_files(),
    output:
        **report_markdown_outputs(),
        html="results/report/index.html",
        figures=report(
            directory("results/report/figures"),
            patterns=["{name}.png"],
            caption="../report/figures.rst",
            category="Figures",
        ),
    log:
        "logs/build_report/report.log",
    conda:
        ENV_REPORT
    params:
        runs=report_runs(),
        language_models=report_language_models(),
        scans=report_scans(),
        embeddings=report_embeddings(),
        amr=report_amr(),
        reads=report_reads(),
        homology=report_homology(),
        interpret=report_interpret(),
        language=report_lm(),
        exports=report_export(),
        config=config,
        region={key: value for key, value in config["report"].items()},
    script:
        "../scripts/build_report.py"
