rule make_demo:
    output:
        genome="results/data/demo/genome.fa",
        truth="results/data/demo/truth.gff3",
        tables=expand("results/data/{task}/{split}.tsv", task=DEMO_TASKS, split=SPLITS),
        summary=report(
            "results/data/demo/summary.tsv",
            caption="../report/dataset_summary.rst",
            category="Data",
        ),
    log:
        "logs/make_demo/demo.log",
    benchmark:
        "benchmarks/make_demo/demo.tsv"
    conda:
        ENV_DATA
    params:
        demo=config["demo"],
        seed=config["seed"],
        tasks={name: config["tasks"][name]["kind"] for name in sorted(DEMO_TASKS)},  # order-free
    script:
        "../scripts/make_demo.py"


rule build_task_dataset:
    input:
        unpack(task_source_files),
    output:
        tables=expand("results/data/{{task}}/{split}.tsv", split=SPLITS),
        splits="results/data/{task}/splits.tsv",
        summary=report(
            "results/data/{task}/summary.tsv",
            caption="../report/dataset_summary.rst",
            category="Data",
            labels={"task": "{task}"},
        ),
    log:
        "logs/build_task_dataset/{task}.log",
    benchmark:
        "benchmarks/build_task_dataset/{task}.tsv"
    wildcard_constraints:
        task="|".join(SOURCE_TASKS) or "no-source-task",
    conda:
        ENV_DATA
    params:
        source=lambda wildcards: config["tasks"][wildcards.task]["source"],
        builder=lambda wildcards: config["tasks"][wildcards.task]["params"],
        split=lambda wildcards: config["tasks"][wildcards.task]["split"],
        seed=config["seed"],
    script:
        "../scripts/build_task_dataset.py"


rule assemble_genome:
    input:
        unpack(genome_replicons),
        unpack(genome_promoter_truth),
    output:
        fasta="results/data/genomes/{genome}/genome.fa",
        truth="results/data/genomes/{genome}/truth.gff3",
    log:
        "logs/assemble_genome/{genome}.log",
    benchmark:
        "benchmarks/assemble_genome/{genome}.tsv"
    conda:
        ENV_DATA
    script:
        "../scripts/assemble_genome.py"


rule dataset_overlap:
    input:
        tables=expand("results/data/{task}/{split}.tsv", task=TASKS, split=SPLITS),
    output:
        table=report(
            "results/tables/dataset_overlap.tsv",
            caption="../report/dataset_overlap.rst",
            category="Data",
        ),
    log:
        "logs/dataset_overlap/all.log",
    benchmark:
        "benchmarks/dataset_overlap/all.tsv"
    conda:
        ENV_DATA
    params:
        tasks=TASKS,
    script:
        "../scripts/dataset_overlap.py"
