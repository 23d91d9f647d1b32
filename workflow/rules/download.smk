# Downloads run on the submitting host (localrules): cluster compute nodes often have no internet.
# Every file lands in resources/downloads/ under genolm's mirror layout, verified before it is renamed into place.


localrules:
    download_dataset,
    download_genome,
    download_reads_paired,
    download_reads_single,


rule download_dataset:
    output:
        "resources/downloads/datasets/{dataset}/{file}",
    log:
        "logs/download_dataset/{dataset}/{file}.log",
    benchmark:
        "benchmarks/download_dataset/{dataset}/{file}.tsv"
    conda:
        ENV_DATA
    params:
        entry=lambda wildcards: dataset_entry(wildcards.dataset, wildcards.file),
        network=download_settings,
    script:
        "../scripts/download_dataset.py"


rule download_genome:
    output:
        fasta="resources/downloads/genomes/{accession}.fasta",
        genbank="resources/downloads/genomes/{accession}.gb",
    log:
        "logs/download_genome/{accession}.log",
    benchmark:
        "benchmarks/download_genome/{accession}.tsv"
    conda:
        ENV_DATA
    params:
        network=download_settings,
    script:
        "../scripts/download_genome.py"


rule download_reads_paired:
    output:
        reads=[
            "resources/downloads/sra/{run}/{run}_1.fastq.gz",
            "resources/downloads/sra/{run}/{run}_2.fastq.gz",
        ],
    log:
        "logs/download_reads/{run}.log",
    benchmark:
        "benchmarks/download_reads/{run}.tsv"
    conda:
        ENV_DATA
    params:
        max_reads=lambda wildcards: run_settings(wildcards.run)["max_reads"],
        network=download_settings,
    script:
        "../scripts/download_reads.py"


rule download_reads_single:
    output:
        reads=["resources/downloads/sra/{run}/{run}.fastq.gz"],
    log:
        "logs/download_reads/{run}.log",
    benchmark:
        "benchmarks/download_reads/{run}.tsv"
    conda:
        ENV_DATA
    params:
        max_reads=lambda wildcards: run_settings(wildcards.run)["max_reads"],
        network=download_settings,
    script:
        "../scripts/download_reads.py"
