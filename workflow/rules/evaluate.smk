# Table merges that take seconds run on the submitting host (localrules): on a cluster, each would otherwise wait
# in the queue for longer than it runs.
localrules:
    collect_metrics,
    compare_published,
    evaluate_baselines,
    evaluate_ensemble,
    evaluate_model_ensemble,


rule evaluate_classifier:
    input:
        checkpoint="results/train/{task}/{model}/seed{seed}/model.safetensors",
        valid=lambda wildcards: task_tokens(wildcards)["valid"],
        test=lambda wildcards: task_tokens(wildcards)["test"],
    output:
        predictions="results/evaluate/{task}/{model}/seed{seed}/predictions.tsv",
        metrics="results/evaluate/{task}/{model}/seed{seed}/metrics.tsv",
    log:
        "logs/evaluate_classifier/{task}_{model}_seed{seed}.log",
    benchmark:
        "benchmarks/evaluate_classifier/{task}_{model}_seed{seed}.tsv"
    conda:
        ENV_TORCH
    params:
        threshold_metric=config["evaluate"]["threshold_metric"],
        bootstrap=config["evaluate"]["bootstrap"],
        seed=lambda wildcards: int(wildcards.seed),
        device=config["device"],
    script:
        "../scripts/evaluate_classifier.py"


rule evaluate_ensemble:
    input:
        predictions=seed_predictions,
    output:
        predictions="results/evaluate/{task}/{model}/ensemble/predictions.tsv",
        metrics="results/evaluate/{task}/{model}/ensemble/metrics.tsv",
    log:
        "logs/evaluate_ensemble/{task}_{model}.log",
    benchmark:
        "benchmarks/evaluate_ensemble/{task}_{model}.tsv"
    conda:
        ENV_DATA
    params:
        threshold_metric=config["evaluate"]["threshold_metric"],
        bootstrap=config["evaluate"]["bootstrap"],
    script:
        "../scripts/evaluate_ensemble.py"


rule evaluate_model_ensemble:
    input:
        predictions=model_ensemble_inputs,
    output:
        predictions="results/evaluate/{task}/model_ensembles/{ensemble}/predictions.tsv",
        metrics="results/evaluate/{task}/model_ensembles/{ensemble}/metrics.tsv",
    log:
        "logs/evaluate_model_ensemble/{task}_{ensemble}.log",
    benchmark:
        "benchmarks/evaluate_model_ensemble/{task}_{ensemble}.tsv"
    conda:
        ENV_DATA
    params:
        members=model_ensemble_members,
        threshold_metric=config["evaluate"]["threshold_metric"],
        bootstrap=config["evaluate"]["bootstrap"],
    script:
        "../scripts/evaluate_model_ensemble.py"


rule embed_classifier:
    input:
        unpack(embedding_annotation),
        checkpoint="results/train/{task}/{model}/seed{seed}/model.safetensors",
        test=lambda wildcards: task_tokens(wildcards)["test"],
        task_table="results/data/{task}/test.tsv",
    output:
        embeddings="results/evaluate/{task}/{model}/seed{seed}/embeddings.npz",
        table="results/evaluate/{task}/{model}/seed{seed}/embeddings.tsv.gz",
        projection="results/evaluate/{task}/{model}/seed{seed}/embedding_2d.tsv",
    log:
        "logs/embed_classifier/{task}_{model}_seed{seed}.log",
    benchmark:
        "benchmarks/embed_classifier/{task}_{model}_seed{seed}.tsv"
    conda:
        ENV_TORCH
    params:
        seed=lambda wildcards: int(wildcards.seed),
        max_points=config["report"]["embedding_points"],
        device=config["device"],
    script:
        "../scripts/embed_classifier.py"


rule evaluate_baselines:
    input:
        tables=expand("results/data/{{task}}/{split}.tsv", split=SPLITS),
    output:
        metrics="results/evaluate/{task}/baselines/metrics.tsv",
    log:
        "logs/evaluate_baselines/{task}.log",
    benchmark:
        "benchmarks/evaluate_baselines/{task}.tsv"
    conda:
        ENV_DATA
    params:
        threshold_metric=config["evaluate"]["threshold_metric"],
        bootstrap=config["evaluate"]["bootstrap"],
        seed=config["seed"],
    script:
        "../scripts/evaluate_baselines.py"


rule collect_metrics:
    input:
        models=run_paths("results/evaluate/{task}/{model}/seed{seed}/metrics.tsv"),
        ensembles=ensemble_paths("results/evaluate/{task}/{model}/ensemble/metrics.tsv"),
        model_ensembles=model_ensemble_paths(
            "results/evaluate/{task}/model_ensembles/{ensemble}/metrics.tsv"
        ),
        baselines=expand("results/evaluate/{task}/baselines/metrics.tsv", task=TASKS),
    output:
        table=report(
            "results/tables/metrics.tsv",
            caption="../report/metrics.rst",
            category="Metrics",
        ),
        summary=report(
            "results/tables/summary.tsv",
            caption="../report/summary.rst",
            category="Metrics",
        ),
    log:
        "logs/collect_metrics/all.log",
    benchmark:
        "benchmarks/collect_metrics/all.tsv"
    conda:
        ENV_DATA
    script:
        "../scripts/collect_metrics.py"


rule compare_published:
    input:
        models=run_paths("results/evaluate/{task}/{model}/seed{seed}/metrics.tsv"),
        ensembles=ensemble_paths("results/evaluate/{task}/{model}/ensemble/metrics.tsv"),
        model_ensembles=model_ensemble_paths(
            "results/evaluate/{task}/model_ensembles/{ensemble}/metrics.tsv"
        ),
        published=shipped_path(config["published_metrics"]),
    output:
        table=report(
            "results/tables/published_comparison.tsv",
            caption="../report/published_comparison.rst",
            category="Metrics",
        ),
        markdown="results/tables/published_comparison.md",
    log:
        "logs/compare_published/all.log",
    benchmark:
        "benchmarks/compare_published/all.tsv"
    conda:
        ENV_DATA
    params:
        tasks=config["tasks"],
        model_ensembles=config["evaluate"]["model_ensembles"],
    script:
        "../scripts/compare_published.py"
