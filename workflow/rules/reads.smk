# Sequencing reads scored with the scan models (genolm.reads_scan): per read set, task and model, the fraction of
# reads (or pairs) with an IS or promoter signal and the positive reads.


rule scan_reads:
    input:
        unpack(scan_model_files),
        reads=lambda wildcards: reads_files(wildcards.sample),
    output:
        summary="results/reads/{sample}/{task}/{model}/summary.tsv",
        positives="results/reads/{sample}/{task}/{model}/positives.fasta.gz",
    log:
        "logs/scan_reads/{sample}_{task}_{model}.log",
    benchmark:
        "benchmarks/scan_reads/{sample}_{task}_{model}.tsv"
    wildcard_constraints:
        sample="|".join(READS) or "no-read-set",
    conda:
        ENV_TORCH
    threads: 2
    resources:
        gpu=1,
    params:
        task=lambda wildcards: config["tasks"][wildcards.task],
        batch_size=config["scan"]["batch_size"],
        batch_reads=config["readscan"]["batch_reads"],
        min_length=config["readscan"]["min_length"],
        device=config["device"],
    script:
        "../scripts/scan_reads.py"
