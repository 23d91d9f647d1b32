rule pretrain_lm:
    input:
        corpus=lm_corpus,
    output:
        checkpoint="results/pretrain/{model}/seed{seed}/lm.safetensors",
        meta="results/pretrain/{model}/seed{seed}/lm.json",
        history="results/pretrain/{model}/seed{seed}/history.tsv",
    log:
        "logs/pretrain_lm/{model}_seed{seed}.log",
    benchmark:
        "benchmarks/pretrain_lm/{model}_seed{seed}.tsv"
    conda:
        ENV_TORCH
    threads: 2
    resources:
        gpu=1,
    params:
        model=lambda wildcards: lm_settings(
            config["models"][wildcards.model], "pretrain"
        ),
        device=config["device"],
    script:
        "../scripts/pretrain_lm.py"


rule finetune_lm:
    input:
        unpack(task_tokens),
        lm=genome_pretrained_lm,
    output:
        checkpoint="results/finetune/{task}/{model}/seed{seed}/lm.safetensors",
        meta="results/finetune/{task}/{model}/seed{seed}/lm.json",
        history="results/finetune/{task}/{model}/seed{seed}/history.tsv",
    log:
        "logs/finetune_lm/{task}_{model}_seed{seed}.log",
    benchmark:
        "benchmarks/finetune_lm/{task}_{model}_seed{seed}.tsv"
    conda:
        ENV_TORCH
    threads: 2
    resources:
        gpu=1,
    params:
        model=lambda wildcards: lm_settings(
            config["models"][wildcards.model], "finetune"
        ),
        device=config["device"],
    script:
        "../scripts/finetune_lm.py"


rule train_classifier:
    input:
        unpack(task_tokens),
        lm=pretrained_lm,
    output:
        checkpoint="results/train/{task}/{model}/seed{seed}/model.safetensors",
        meta="results/train/{task}/{model}/seed{seed}/model.json",
        history="results/train/{task}/{model}/seed{seed}/history.tsv",
        config="results/train/{task}/{model}/seed{seed}/config.yaml",
    log:
        "logs/train_classifier/{task}_{model}_seed{seed}.log",
    benchmark:
        "benchmarks/train_classifier/{task}_{model}_seed{seed}.tsv"
    conda:
        ENV_TORCH
    threads: 2
    resources:
        gpu=1,
    params:
        model=lambda wildcards: model_for_task(wildcards.model, wildcards.task),
        task=lambda wildcards: {
            key: config["tasks"][wildcards.task][key]
            for key in ("kind", "strand_specific")
        },
        device=config["device"],
    script:
        "../scripts/train_classifier.py"
