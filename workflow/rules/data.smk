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
    conda:
        ENV_DATA
    params:
        demo=config["demo"],
        seed=config["seed"],
        tasks={name: config["tasks"][name]["kind"] for name in DEMO_TASKS},
    script:
        "../scripts/make_demo.py"
