"""Rules of issue 9 (interpret): in-silico mutagenesis and motifs learnt by the classifiers."""


rule in_silico_mutagenesis:
    input:
        unpack(ism_truth),
        checkpoint=lambda wildcards: scan_model_files(wildcards)["checkpoint"],
        fasta=genome_fasta,
    output:
        table="results/interpret/ism/{genome}/{task}/{model}/{target}.tsv",
        figure="results/interpret/ism/{genome}/{task}/{model}/{target}.png",
    log:
        "logs/in_silico_mutagenesis/{genome}_{task}_{model}_{target}.log",
    benchmark:
        "benchmarks/in_silico_mutagenesis/{genome}_{task}_{model}_{target}.tsv"
    wildcard_constraints:
        target=r"[A-Za-z0-9_.-]+",
    conda:
        ENV_TORCH
    threads: 2
    params:
        task=lambda wildcards: config["tasks"][wildcards.task],
        region=ism_region,
        step=config["interpret"]["mutagenesis"]["step"],
        device=config["device"],
    script:
        "../scripts/in_silico_mutagenesis.py"


rule discover_motifs:
    input:
        unpack(motif_calls),
        checkpoint=lambda wildcards: scan_model_files(wildcards)["checkpoint"],
        test="results/data/{task}/test.tsv",
    output:
        motifs="results/interpret/motifs/{task}/{model}/motifs.tsv",
        meme="results/interpret/motifs/{task}/{model}/motifs.meme",
        logos="results/interpret/motifs/{task}/{model}/logos.png",
        seqlets="results/interpret/motifs/{task}/{model}/seqlets.tsv",
    log:
        "logs/discover_motifs/{task}_{model}.log",
    benchmark:
        "benchmarks/discover_motifs/{task}_{model}.tsv"
    conda:
        ENV_TORCH
    threads: 2
    params:
        task=lambda wildcards: config["tasks"][wildcards.task],
        sequences=config["interpret"]["motifs"]["sequences"],
        max_bases=config["interpret"]["motifs"]["max_bases"],
        tir_width=config["interpret"]["motifs"]["tir_width"],
        settings=motif_settings(),
        device=config["device"],
    script:
        "../scripts/discover_motifs.py"
