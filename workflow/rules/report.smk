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
        timings=report_timings(),
        data=report_data_files(),
    output:
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
        config=config,
        region={key: value for key, value in config["report"].items()},
    script:
        "../scripts/build_report.py"
