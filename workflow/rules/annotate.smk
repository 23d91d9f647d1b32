# IS calls near antimicrobial-resistance genes (genolm.amr): for every scanned genome with a gene annotation
# (NCBI GenBank; the GFF3 of a `file` genome; synthetic labels on the demo) and every IS task.


rule label_demo_amr:
    input:
        truth=lambda wildcards: genome_truth(wildcards.genome),
    output:
        gff="results/annotate/{genome}/demo_annotation.gff3",
    log:
        "logs/label_demo_amr/{genome}.log",
    wildcard_constraints:
        genome="|".join(DEMO_GENOMES) or "no-demo-genome",
    conda:
        ENV_DATA
    script:
        "../scripts/label_demo_amr.py"


rule is_amr_proximity:
    input:
        unpack(amr_annotation),
        calls="results/scan/{genome}/{task}/{model}/calls.gff3.gz",
        patterns=AMR_PATTERNS,
    output:
        calls="results/annotate/{genome}/{task}/{model}/is_amr_calls.tsv",
        genes="results/annotate/{genome}/{task}/{model}/amr_genes.tsv",
        replicons="results/annotate/{genome}/{task}/{model}/replicons.tsv",
    log:
        "logs/is_amr_proximity/{genome}_{task}_{model}.log",
    wildcard_constraints:
        task="|".join(IS_SCAN_TASKS) or "no-is-task",
    conda:
        ENV_DATA
    params:
        near_bp=config["amr"]["near_bp"],
    script:
        "../scripts/is_amr_proximity.py"
