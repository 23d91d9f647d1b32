"""Exported models (issue 9): each scanning model's first seed as a folder that genolm.load_model reads."""


rule export_model:
    input:
        unpack(export_model_files),
    output:
        weights="results/export/{task}_{model}/model.safetensors",
        sidecar="results/export/{task}_{model}/model.json",
        readme="results/export/{task}_{model}/README.md",
        card="results/export/{task}_{model}/card.json",
    log:
        "logs/export_model/{task}_{model}.log",
    benchmark:
        "benchmarks/export_model/{task}_{model}.tsv"
    conda:
        ENV_TORCH
    params:
        task=lambda wildcards: config["tasks"][wildcards.task],
        model_settings=lambda wildcards: model_for_task(wildcards.model, wildcards.task),
        scan={key: config["scan"][key] for key in ("max_n_fraction", "bedgraph_bin")},
        seed=lambda wildcards: int(model_seeds(wildcards.model)[0]),
        threshold_metric=config["evaluate"]["threshold_metric"],
    script:
        "../scripts/export_model.py"
