rule tokenize_dataset:
    input:
        tables=expand("results/data/{{task}}/{split}.tsv", split=SPLITS),
    output:
        arrays=expand(
            "results/tokens/{{task}}/k{{k}}_s{{stride}}/{split}.npz", split=SPLITS
        ),
        vocab="results/tokens/{task}/k{k}_s{stride}/vocab.json",
    log:
        "logs/tokenize_dataset/{task}_k{k}_s{stride}.log",
    benchmark:
        "benchmarks/tokenize_dataset/{task}_k{k}_s{stride}.tsv"
    conda:
        ENV_DATA
    params:
        augment_reverse_complement=lambda wildcards: not config["tasks"][
            wildcards.task
        ]["strand_specific"],
    script:
        "../scripts/tokenize_dataset.py"


rule tokenize_corpus:
    input:
        fasta=genome_fasta,
    output:
        corpus="results/tokens/corpus/{genome}/k{k}_s{stride}.npz",
    log:
        "logs/tokenize_corpus/{genome}_k{k}_s{stride}.log",
    benchmark:
        "benchmarks/tokenize_corpus/{genome}_k{k}_s{stride}.tsv"
    conda:
        ENV_DATA
    script:
        "../scripts/tokenize_corpus.py"
