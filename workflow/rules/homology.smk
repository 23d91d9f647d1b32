# The homology IS caller (genolm.is_homology): IS elements of every scanned genome by shared canonical k-mers with
# ISfinder (the demo genome: with its own IS families), called, written and evaluated like the model scans.


rule write_demo_is_library:
    output:
        fasta="results/homology/library/demo.fa",
    log:
        "logs/write_demo_is_library/demo.log",
    conda:
        ENV_DATA
    params:
        demo=config["demo"],
        seed=config["seed"],
    script:
        "../scripts/write_demo_is_library.py"


rule build_is_index:
    input:
        unpack(homology_library_files),
    output:
        index="results/homology/index/{library}.npz",
    log:
        "logs/build_is_index/{library}.log",
    benchmark:
        "benchmarks/build_is_index/{library}.tsv"
    wildcard_constraints:
        library="isfinder|demo",
    conda:
        ENV_DATA
    params:
        k=HOMOLOGY["k"],
        max_element_length=HOMOLOGY["max_element_length"],
    script:
        "../scripts/build_is_index.py"


rule homology_scan_is:
    input:
        index=homology_index,
        fasta=genome_fasta,
    output:
        bed="results/homology/{genome}/calls.bed.gz",
        bed_index="results/homology/{genome}/calls.bed.gz.tbi",
        gff="results/homology/{genome}/calls.gff3.gz",
        gff_index="results/homology/{genome}/calls.gff3.gz.tbi",
        summary="results/homology/{genome}/summary.tsv",
    log:
        "logs/homology_scan_is/{genome}.log",
    benchmark:
        "benchmarks/homology_scan_is/{genome}.tsv"
    conda:
        ENV_DATA
    params:
        settings=homology_settings(),
    script:
        "../scripts/homology_scan_is.py"


rule evaluate_homology_scan:
    input:
        unpack(genome_known_is),
        gff="results/homology/{genome}/calls.gff3.gz",
        truth=lambda wildcards: genome_truth(wildcards.genome),
    output:
        evaluation="results/homology/{genome}/evaluation.tsv",
    log:
        "logs/evaluate_homology_scan/{genome}.log",
    conda:
        ENV_DATA
    params:
        min_overlap=HOMOLOGY["min_overlap"],
        known_is_exclude=lambda wildcards: config["genomes"][wildcards.genome].get(
            "known_is_exclude", ""
        ),
    script:
        "../scripts/evaluate_homology_scan.py"
