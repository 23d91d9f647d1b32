# scan.parts > 1 scatters the scoring of each genome over that many jobs (disjoint runs of windows, see
# genolm.scan_blocks); scan_genome then gathers their scores and calls elements, equal to a single job.
# scan.seed_ensemble: both score every window with each seed's checkpoint and keep the mean (scan_checkpoints).
scattergather:
    scan=config["scan"]["parts"],


rule score_genome_part:
    input:
        checkpoint=lambda wildcards: scan_checkpoints(wildcards)["checkpoint"],
        fasta=genome_fasta,
    output:
        scores=temp("results/scan/{genome}/{task}/{model}/parts/{scatteritem}.npz"),
    log:
        "logs/score_genome_part/{genome}_{task}_{model}_{scatteritem}.log",
    benchmark:
        "benchmarks/score_genome_part/{genome}_{task}_{model}_{scatteritem}.tsv"
    conda:
        ENV_TORCH
    threads: 2
    resources:
        gpu=1,
    params:
        step=lambda wildcards: config["tasks"][wildcards.task]["scan"]["step"],
        batch_size=config["scan"]["batch_size"],
        device=config["device"],
        max_n_fraction=config["scan"]["max_n_fraction"],
    script:
        "../scripts/score_genome_part.py"


rule scan_genome:
    input:
        unpack(scan_checkpoints),
        fasta=genome_fasta,
        parts=scan_parts,
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
        gpu=lambda wildcards: 0 if scan_parts(wildcards) else 1,
    params:
        task=lambda wildcards: config["tasks"][wildcards.task],
        batch_size=config["scan"]["batch_size"],
        device=config["device"],
        max_n_fraction=config["scan"]["max_n_fraction"],
        bedgraph_bin=config["scan"]["bedgraph_bin"],
    script:
        "../scripts/scan_genome.py"


rule evaluate_scan:
    input:
        unpack(genome_known_is),
        unpack(task_region_split),
        gff="results/scan/{genome}/{task}/{model}/calls.gff3.gz",
        scores="results/scan/{genome}/{task}/{model}/scores.npz",
        truth=lambda wildcards: genome_truth(wildcards.genome),
    output:
        evaluation="results/scan/{genome}/{task}/{model}/evaluation.tsv",
    log:
        "logs/evaluate_scan/{genome}_{task}_{model}.log",
    conda:
        ENV_TORCH
    params:
        task=lambda wildcards: config["tasks"][wildcards.task],
        known_is_exclude=lambda wildcards: config["genomes"][wildcards.genome].get(
            "known_is_exclude", ""
        ),
    script:
        "../scripts/evaluate_scan.py"


rule promoter_context:
    input:
        unpack(amr_annotation),
        scores="results/scan/{genome}/{task}/{model}/scores.npz",
        truth=lambda wildcards: genome_truth(wildcards.genome),
        splits="results/data/{task}/splits.tsv",
    output:
        model="results/scan/{genome}/{task}/{model}/context/model.json",
        scores="results/scan/{genome}/{task}/{model}/context/scores.npz",
        bed="results/scan/{genome}/{task}/{model}/context/calls.bed.gz",
        bed_index="results/scan/{genome}/{task}/{model}/context/calls.bed.gz.tbi",
        gff="results/scan/{genome}/{task}/{model}/context/calls.gff3.gz",
        gff_index="results/scan/{genome}/{task}/{model}/context/calls.gff3.gz.tbi",
        bedgraph="results/scan/{genome}/{task}/{model}/context/scores.bedgraph.gz",
        index="results/scan/{genome}/{task}/{model}/context/scores.bedgraph.gz.tbi",
        evaluation="results/scan/{genome}/{task}/{model}/context/evaluation.tsv",
    log:
        "logs/promoter_context/{genome}_{task}_{model}.log",
    benchmark:
        "benchmarks/promoter_context/{genome}_{task}_{model}.tsv"
    wildcard_constraints:
        genome="|".join(context_genomes()[0]) or "no-context-genome",
    conda:
        ENV_DATA
    params:
        task=lambda wildcards: config["tasks"][wildcards.task],
        smooth=config["scan"]["context_smooth"],
        bedgraph_bin=config["scan"]["bedgraph_bin"],
        seed=config["seed"],
    script:
        "../scripts/promoter_context.py"


rule apply_promoter_context:
    input:
        unpack(amr_annotation),
        scores="results/scan/{genome}/{task}/{model}/scores.npz",
        model=lambda wildcards: context_model_of(wildcards.task, wildcards.model),
    output:
        scores="results/scan/{genome}/{task}/{model}/context/scores.npz",
        bed="results/scan/{genome}/{task}/{model}/context/calls.bed.gz",
        bed_index="results/scan/{genome}/{task}/{model}/context/calls.bed.gz.tbi",
        gff="results/scan/{genome}/{task}/{model}/context/calls.gff3.gz",
        gff_index="results/scan/{genome}/{task}/{model}/context/calls.gff3.gz.tbi",
        bedgraph="results/scan/{genome}/{task}/{model}/context/scores.bedgraph.gz",
        index="results/scan/{genome}/{task}/{model}/context/scores.bedgraph.gz.tbi",
    log:
        "logs/apply_promoter_context/{genome}_{task}_{model}.log",
    benchmark:
        "benchmarks/apply_promoter_context/{genome}_{task}_{model}.tsv"
    wildcard_constraints:
        genome="|".join(context_genomes()[1]) or "no-context-genome",
    conda:
        ENV_DATA
    params:
        task=lambda wildcards: config["tasks"][wildcards.task],
        bedgraph_bin=config["scan"]["bedgraph_bin"],
    script:
        "../scripts/apply_promoter_context.py"
