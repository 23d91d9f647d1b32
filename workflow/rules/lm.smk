"""Language-model quality and zero-shot variant scoring (genolm.lm_quality, genolm.variant_effects)."""


rule make_demo_variants:
    input:
        fasta=genome_path(DEMO_GENOMES[0]) if DEMO_GENOMES else [],
        truth=genome_truth(DEMO_GENOMES[0]) if DEMO_GENOMES else [],
    output:
        vcf="results/lm/variants/demo.vcf.gz",
        tbi="results/lm/variants/demo.vcf.gz.tbi",
    log:
        "logs/make_demo_variants/demo.log",
    benchmark:
        "benchmarks/make_demo_variants/demo.tsv"
    conda:
        ENV_DATA
    params:
        box=LM["variants"]["demo"]["box"],
        background=LM["variants"]["demo"]["background"],
        seed=config["seed"],
    script:
        "../scripts/make_demo_variants.py"


rule score_variants:
    input:
        unpack(lm_variant_inputs),
    output:
        tsv="results/lm/variants/{vcf}/{lm}.tsv",
        vcf="results/lm/variants/{vcf}/{lm}.vcf.gz",
        tbi="results/lm/variants/{vcf}/{lm}.vcf.gz.tbi",
    log:
        "logs/score_variants/{vcf}/{lm}.log",
    benchmark:
        "benchmarks/score_variants/{vcf}/{lm}.tsv"
    wildcard_constraints:
        vcf="|".join(lm_vcfs()) or "no-vcf",
        lm=LM_PATTERN,
    conda:
        ENV_TORCH
    params:
        flank=LM["variants"]["flank"],
        batch_size=LM["variants"]["batch_size"],
        device=config["device"],
    script:
        "../scripts/score_variants.py"


rule evaluate_language_model:
    input:
        unpack(lm_quality_inputs),
    output:
        table="results/lm/quality/{lm}.tsv",
    log:
        "logs/evaluate_language_model/{lm}.log",
    benchmark:
        "benchmarks/evaluate_language_model/{lm}.tsv"
    wildcard_constraints:
        lm=LM_PATTERN,
    conda:
        ENV_TORCH
    params:
        genomes=LM["quality"]["genomes"],
        seen=lambda wildcards: (
            config["models"][lm_model(wildcards.lm)]["pretrain"] or {}
        ).get("genomes", []),
        heldout_demo=lm_heldout_demo(),
        max_tokens=LM["quality"]["max_tokens"],
        batch_size=LM["quality"]["batch_size"],
        seed=config["seed"],
        device=config["device"],
    script:
        "../scripts/evaluate_language_model.py"
