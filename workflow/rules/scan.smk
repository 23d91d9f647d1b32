rule scan_genome:
    input:
        unpack(scan_model_files),
        fasta=genome_fasta,
    output:
        bed="results/scan/{genome}/{task}/{model}/calls.bed.gz",
        bed_index="results/scan/{genome}/{task}/{model}/calls.bed.gz.tbi",
        gff="results/scan/{genome}/{task}/{model}/calls.gff3.gz",
        gff_index="results/scan/{genome}/{task}/{model}/calls.gff3.gz.tbi",
        bedgraph="results/scan/{genome}/{task}/{model}/scores.bedgraph.gz",
        bedgraph_index="results/scan/{genome}/{task}/{model}/scores.bedgraph.gz.tbi",
        scores="results/scan/{genome}/{task}/{model}/scores.npz",
        summary="results/scan/{genome}/{task}/{model}/summary.tsv",
    log:
        "logs/scan_genome/{genome}_{task}_{model}.log",
    benchmark:
        "benchmarks/scan_genome/{genome}_{task}_{model}.tsv"
    conda:
        ENV_TORCH
    threads: 2
    resources:
        gpu=1,
    params:
        task=lambda wildcards: config["tasks"][wildcards.task],
        batch_size=config["scan"]["batch_size"],
        device=config["device"],
    script:
        "../scripts/scan_genome.py"


rule evaluate_scan:
    input:
        gff="results/scan/{genome}/{task}/{model}/calls.gff3.gz",
        truth=lambda wildcards: genome_truth(wildcards.genome),
    output:
        evaluation="results/scan/{genome}/{task}/{model}/evaluation.tsv",
    log:
        "logs/evaluate_scan/{genome}_{task}_{model}.log",
    conda:
        ENV_TORCH
    params:
        task=lambda wildcards: config["tasks"][wildcards.task],
    script:
        "../scripts/evaluate_scan.py"
