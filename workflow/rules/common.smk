"""Config validation, names and path helpers shared by every rule file. Logic lives in the genolm package."""

import os
import shlex
import sys
from dataclasses import asdict
from pathlib import Path

from snakemake.utils import validate

validate(config, schema="../schemas/config.schema.yaml")

# The genolm package sits next to the rule scripts; make it importable here without installing it.
sys.path.insert(0, str(Path(workflow.basedir) / "workflow" / "scripts"))

from genolm.config_order import canonical_config
from genolm.cv import expand_folds, origin_task
from genolm.download import read_sheet
from genolm.lm_sharing import (
    label_seeds_where_shared,
    language_model_owner,
    lm_settings,
)
from genolm.sources.catalog import SOURCE_KINDS, source_files

# Cross-validated tasks become one task per fold; the tasks as written stay in USER_TASKS for name checks.
USER_TASKS = list(config["tasks"])
config["tasks"] = expand_folds(config["tasks"])
# Sorted settings blocks: Snakemake's params trigger compares dict reprs, so key order would otherwise count as a
# change. Rebuilt in place because `config` is Snakemake's own object.
_canonical = canonical_config(config)
config.clear()
config.update(_canonical)


def shipped_path(path):
    """A config path as given when it exists from the working directory, else inside the workflow (shipped files)."""
    if not path or Path(path).is_absolute() or Path(path).exists():
        return path
    return str(Path(workflow.basedir) / path)


DATASETS_SHEET = shipped_path(config["datasets_sheet"])
DATASETS = {(entry.dataset, entry.file): entry for entry in read_sheet(DATASETS_SHEET)}

SPLITS = ["train", "valid", "test"]
TASKS = list(config["tasks"])
MODELS = list(config["models"])
SEEDS = [str(seed) for seed in config["seeds"]]


def model_seeds(model):
    """A model's training seeds: its own `seeds`, else the top-level ones."""
    return [
        str(seed) for seed in config["models"][model].get("seeds") or config["seeds"]
    ]


def task_models(task):
    """The models trained on a task: its `models` list, else every model."""
    return config["tasks"][task].get("models") or MODELS


def runs():
    """Every (task, model, seed) the config trains, in config order."""
    return [
        (task, model, seed)
        for task in TASKS
        for model in task_models(task)
        for seed in model_seeds(model)
    ]


def run_paths(pattern):
    """`pattern` with {task}, {model} and {seed} filled in for every run."""
    return [
        pattern.format(task=task, model=model, seed=seed)
        for task, model, seed in runs()
    ]


def ensemble_paths(pattern):
    """`pattern` with {task} and {model} filled in for every model trained with several seeds on a task (seed
    ensembles, `evaluate.seed_ensemble`)."""
    if not config["evaluate"]["seed_ensemble"]:
        return []
    return [
        pattern.format(task=task, model=model)
        for task in TASKS
        for model in task_models(task)
        if len(model_seeds(model)) > 1
    ]


def model_seed_predictions(task, model):
    """Every seed's predictions of one model on one task."""
    return [
        f"results/evaluate/{task}/{model}/seed{seed}/predictions.tsv"
        for seed in model_seeds(model)
    ]


def seed_predictions(wildcards):
    """What a seed ensemble averages: every seed's predictions of its model on its task."""
    return model_seed_predictions(wildcards.task, wildcards.model)


MODEL_ENSEMBLES = config["evaluate"]["model_ensembles"]


def model_ensemble_runs(task):
    """The model ensembles evaluated on a task: those whose every member the task trains."""
    trained = set(task_models(task))
    return [
        name for name, members in MODEL_ENSEMBLES.items() if trained.issuperset(members)
    ]


def model_ensemble_paths(pattern):
    """`pattern` with {task} and {ensemble} filled in for every model ensemble on every task that trains it."""
    return [
        pattern.format(task=task, ensemble=name)
        for task in TASKS
        for name in model_ensemble_runs(task)
    ]


def model_ensemble_members(wildcards):
    """Each member model's seed predictions on the task, as {model: [paths]}, in the ensemble's own order."""
    return {
        model: model_seed_predictions(wildcards.task, model)
        for model in MODEL_ENSEMBLES[wildcards.ensemble]
    }


def model_ensemble_inputs(wildcards):
    """Every prediction table a model ensemble averages, flat (the rule's input)."""
    return [
        path for paths in model_ensemble_members(wildcards).values() for path in paths
    ]


GENOMES = list(config["genomes"])
DEMO_TASKS = [
    name for name, task in config["tasks"].items() if task["source"] == "demo"
]
SOURCE_TASKS = [name for name in TASKS if name not in DEMO_TASKS]
SCAN_MODELS = config["scan"]["models"] or MODELS
SCAN_TASKS = config["scan"]["tasks"] or TASKS
READS = config["reads"]
ENV_DATA = "../../envs/data.yaml"
ENV_TORCH = "../../envs/torch.yaml"
ENV_REPORT = "../../envs/report.yaml"


PRETRAINABLE = ("awd_lstm", "transformer")


def _check_names():
    """Names that the schema cannot cross-check: references between config sections."""
    for model, settings in config["models"].items():
        for genome in (settings["pretrain"] or {}).get("genomes", []):
            if genome not in config["genomes"]:
                raise ValueError(
                    f"config: models.{model}.pretrain.genomes names unknown genome '{genome}'"
                )
        if settings["pretrain"] and settings["arch"] not in PRETRAINABLE:
            raise ValueError(
                f"config: models.{model}.pretrain is only supported for arch "
                f"{' or '.join(PRETRAINABLE)}"
            )
        if settings["finetune"] and (
            settings["arch"] != "awd_lstm" or not settings["pretrain"]
        ):
            raise ValueError(
                f"config: models.{model}.finetune (ULMFiT stage 2) needs arch awd_lstm and a pretrain block"
            )
        if settings["transfer"] != "encoder" and (
            settings["arch"] != "awd_lstm" or not settings["pretrain"]
        ):
            raise ValueError(
                f"config: models.{model}.transfer: {settings['transfer']} needs arch awd_lstm and a pretrain block"
            )
        for task in settings["task_params"]:
            if task not in USER_TASKS:
                raise ValueError(
                    f"config: models.{model}.task_params names unknown task '{task}'"
                )
    for name in SOURCE_TASKS:
        task = config["tasks"][name]
        if SOURCE_KINDS[task["source"]] != task["kind"]:
            raise ValueError(
                f"config: tasks.{name}.kind is '{task['kind']}' but source '{task['source']}' "
                f"builds {SOURCE_KINDS[task['source']]} data"
            )
    for name, task in config["tasks"].items():
        if task.get("cv") and task["source"] == "demo":
            raise ValueError(
                f"config: tasks.{origin_task(name, task)}.split.folds needs a real source; the demo's "
                "splits come from the demo generator"
            )
        for model in task.get("models") or []:
            if model not in MODELS:
                raise ValueError(
                    f"config: tasks.{origin_task(name, task)}.models names unknown model '{model}'"
                )
    for name, members in MODEL_ENSEMBLES.items():
        if name in MODELS:
            raise ValueError(
                f"config: evaluate.model_ensembles.{name} has the name of a model; its rows would be confused"
            )
        for model in members:
            if model not in MODELS:
                raise ValueError(
                    f"config: evaluate.model_ensembles.{name} names unknown model '{model}' "
                    f"(known: {', '.join(MODELS)})"
                )
    for key, known in (("genomes", GENOMES), ("models", MODELS), ("tasks", TASKS)):
        for name in config["scan"][key]:
            if name not in known:
                raise ValueError(
                    f"config: scan.{key} names unknown entry '{name}' (known: {', '.join(known)})"
                )


_check_names()


wildcard_constraints:
    task="|".join(TASKS),
    dataset="|".join(sorted({dataset for dataset, _ in DATASETS})),
    file=r"[^/]+",
    accession=r"[A-Za-z0-9_]+(\.\d+)?",
    run=r"[SED]RR\d+",
    model="|".join(MODELS),
    ensemble="|".join(MODEL_ENSEMBLES) or "(?!)",
    genome="|".join(GENOMES),
    seed=r"\d+",
    k=r"[1-8]",
    stride=r"[1-9]\d*",


def model_for_task(model, task):
    """A model's settings for one task's classifier: its per-task parameter overrides applied, and without its seed
    list or other tasks' overrides, so that adding a seed or tuning another task does not retrain this one.
    """
    settings = {
        key: value
        for key, value in config["models"][model].items()
        if key not in ("seeds", "task_params")
    }
    overrides = config["models"][model]["task_params"].get(
        origin_task(task, config["tasks"][task]), {}
    )
    settings["params"] = {**settings["params"], **overrides}
    return settings


def tokenization(model):
    """The k{k}_s{stride} folder name of a model's tokenizer."""
    tok = config["models"][model]["tokenizer"]
    return f"k{tok['k']}_s{tok['stride']}"


def task_tokens(wildcards):
    """Token arrays of every split of a task, tokenized the way the model needs."""
    folder = f"results/tokens/{wildcards.task}/{tokenization(wildcards.model)}"
    return {
        "train": f"{folder}/train.npz",
        "valid": f"{folder}/valid.npz",
        "test": f"{folder}/test.npz",
        "vocab": f"{folder}/vocab.json",
    }


def lm_owner(model, stage):
    """The model whose `stage` LM (pretrain, finetune) `model` reads: the first with the same LM settings, so
    models that differ only in their classifier share one LM instead of training identical copies.
    """
    return language_model_owner(config["models"], model, stage)


def lm_folder(model, seed, task=None):
    """The results/ subfolder of a model's LM: pretrain/{owner}/seed{seed}, or finetune/{task}/{owner}/seed{seed}."""
    if task is None:
        return f"pretrain/{lm_owner(model, 'pretrain')}/seed{seed}"
    return f"finetune/{task}/{lm_owner(model, 'finetune')}/seed{seed}"


def pretrained_lm(wildcards):
    """The language model a classifier starts from: fine-tuned on the task (ULMFiT stage 2) when the model has
    a `finetune` block, else straight from genome pretraining; nothing for models trained from scratch.
    """
    settings = config["models"][wildcards.model]
    if settings["pretrain"] is None:
        return []
    task = wildcards.task if settings["finetune"] else None
    return f"results/{lm_folder(wildcards.model, wildcards.seed, task)}/lm.safetensors"


def genome_pretrained_lm(wildcards):
    """The genome-pretrained language model that a task's fine-tuning (ULMFiT stage 2) starts from."""
    return f"results/{lm_folder(wildcards.model, wildcards.seed)}/lm.safetensors"


def lm_corpus(wildcards):
    """Tokenized genomes of a model's pretraining corpus."""
    pretrain = config["models"][wildcards.model]["pretrain"]
    tok = tokenization(wildcards.model)
    return [
        f"results/tokens/corpus/{genome}/{tok}.npz" for genome in pretrain["genomes"]
    ]


def genome_path(genome):
    """The FASTA of a named genome: the generated demo, the user's file, or the assembled NCBI replicons."""
    settings = config["genomes"][genome]
    if settings["source"] == "demo":
        return "results/data/demo/genome.fa"
    if settings["source"] == "ncbi":
        return f"results/data/genomes/{genome}/genome.fa"
    return settings["fasta"]


def genome_fasta(wildcards):
    return genome_path(wildcards.genome)


def genome_truth(genome):
    """Known elements (GFF3) of a genome, or None when it has no annotation."""
    settings = config["genomes"][genome]
    if settings["source"] == "demo":
        return "results/data/demo/truth.gff3"
    if settings["source"] == "ncbi":
        return f"results/data/genomes/{genome}/truth.gff3"
    return settings.get("gff")


def _known_is_tables():
    """Each genome's `known_is` table that exists. It only adds a second set of IS figures, so a missing one (the
    benchmark config names a file of the offline mirror) is reported and left out instead of stopping the run.
    """
    tables = {}
    for genome, settings in config["genomes"].items():
        path = settings.get("known_is")
        if path and not Path(path).is_file():
            print(
                f"genolm: genomes.{genome}.known_is: {path} not found; IS evaluations of {genome} use its "
                "annotation only",
                file=sys.stderr,
            )
        elif path:
            tables[genome] = path
    return tables


KNOWN_IS = _known_is_tables()


def genome_known_is(wildcards):
    """The genome's table of IS elements its annotation lacks (`known_is`), as an input named known_is, or none."""
    return (
        {"known_is": KNOWN_IS[wildcards.genome]} if wildcards.genome in KNOWN_IS else {}
    )


def split_by_region(task):
    """Whether a task is cut by genome region (split method `region`): its scans are judged on the held-out stretch."""
    return task in SOURCE_TASKS and config["tasks"][task]["split"]["method"] == "region"


def task_region_split(wildcards):
    """The split record of a task split by region, as an input named splits; none for other tasks."""
    if split_by_region(wildcards.task):
        return {"splits": f"results/data/{wildcards.task}/splits.tsv"}
    return {}


def context_genomes():
    """Scanned genomes a promoter context model is fitted on (known promoters and a gene annotation), and the other
    annotated scanned genomes it is applied to."""
    annotated = [
        genome for genome in config["scan"]["genomes"] if has_gene_annotation(genome)
    ]
    fit = [
        genome
        for genome in annotated
        if config["genomes"][genome].get("known_promoters") == "regulondb"
    ]
    return fit, [genome for genome in annotated if genome not in fit]


def context_prefixes(genomes):
    """results/scan/{genome}/{task}/{model} of the promoter scans of `genomes` by tasks split by region."""
    return [
        prefix
        for prefix in scan_prefixes()
        for _, _, genome, task, _ in [prefix.split("/")]
        if genome in genomes
        and config["tasks"][task]["kind"] == "promoter"
        and split_by_region(task)
    ]


def promoter_context_prefixes():
    """The scans a promoter context model is fitted and judged on."""
    return context_prefixes(context_genomes()[0])


def applied_context_prefixes():
    """The scans that borrow the context model of a fit of the same task and model."""
    return [
        prefix
        for prefix in context_prefixes(context_genomes()[1])
        for _, _, _, task, model in [prefix.split("/")]
        if context_model_of(task, model)
    ]


def context_model_of(task, model):
    """The fitted context model a scan of task/model on another genome borrows (the first fit's), or None."""
    for prefix in promoter_context_prefixes():
        _, _, _, fit_task, fit_model = prefix.split("/")
        if (fit_task, fit_model) == (task, model):
            return f"{prefix}/context/model.json"
    return None


def promoter_context_evaluations():
    return [
        f"{prefix}/context/evaluation.tsv" for prefix in promoter_context_prefixes()
    ]


def promoter_context_tracks():
    return [
        f"{prefix}/context/scores.bedgraph.gz"
        for prefix in promoter_context_prefixes() + applied_context_prefixes()
    ]


def dataset_file(dataset, file):
    """Where a row of the dataset sheet is downloaded to (its canonical mirror path under resources/downloads)."""
    if (dataset, file) not in DATASETS:
        raise ValueError(
            f"{DATASETS_SHEET}: no row for dataset '{dataset}' file '{file}'"
        )
    return f"resources/downloads/datasets/{dataset}/{file}"


def dataset_entry(dataset, file):
    dataset_file(dataset, file)
    return asdict(DATASETS[(dataset, file)])


def download_settings(wildcards):
    """Mirror and network settings shared by every download rule."""
    return {
        "mirror": config["mirror"],
        "mirror_layout": shipped_path(config["mirror_layout"]),
        **config["download"],
    }


def run_settings(run):
    """The `reads` entry that asks for a run accession."""
    for settings in READS.values():
        if settings["accession"] == run:
            return settings
    raise ValueError(f"config: run {run} is not listed under `reads`")


def reads_files(name):
    """FASTQ.gz downloads of a named read set."""
    settings = READS[name]
    run = settings["accession"]
    if settings["layout"] == "single":
        return [f"resources/downloads/sra/{run}/{run}.fastq.gz"]
    return [f"resources/downloads/sra/{run}/{run}_{mate}.fastq.gz" for mate in (1, 2)]


def genome_replicons(wildcards):
    """Downloaded FASTA and GenBank of each replicon of an NCBI genome, in config order."""
    accessions = config["genomes"][wildcards.genome]["accessions"]
    return {
        "fasta": [f"resources/downloads/genomes/{acc}.fasta" for acc in accessions],
        "genbank": [f"resources/downloads/genomes/{acc}.gb" for acc in accessions],
    }


def genome_promoter_truth(wildcards):
    """RegulonDB promoters when the genome asks for them (E. coli K-12), else nothing."""
    if config["genomes"][wildcards.genome]["known_promoters"] == "regulondb":
        return {"promoters": dataset_file("regulondb_promoters", "PromoterSet.txt")}
    return {}


def task_source_files(wildcards):
    """Downloaded dataset files a real task's builder reads, by input name."""
    source = config["tasks"][wildcards.task]["source"]
    return {
        name: dataset_file(dataset, file)
        for name, (dataset, file) in source_files(source).items()
    }


def scan_model_files(wildcards):
    """The first seed's checkpoint and metrics (its validation threshold) of the model that scans."""
    seed = model_seeds(wildcards.model)[0]
    return {
        "checkpoint": f"results/train/{wildcards.task}/{wildcards.model}/seed{seed}/model.safetensors",
        "metrics": f"results/evaluate/{wildcards.task}/{wildcards.model}/seed{seed}/metrics.tsv",
    }


def scan_seed_ensemble(model):
    """Whether genome scans by `model` average all its seeds (scan.seed_ensemble, and more than one seed)."""
    return bool(config["scan"]["seed_ensemble"]) and len(model_seeds(model)) > 1


def scan_checkpoints(wildcards):
    """What a genome scan scores with: with scan.seed_ensemble every seed's checkpoint and the seed ensemble's
    metrics (its threshold was chosen on the same mean of probabilities), else the first seed's (scan_model_files).
    """
    if not scan_seed_ensemble(wildcards.model):
        return scan_model_files(wildcards)
    prefix = f"{wildcards.task}/{wildcards.model}"
    return {
        "checkpoint": [
            f"results/train/{prefix}/seed{seed}/model.safetensors"
            for seed in model_seeds(wildcards.model)
        ],
        "metrics": f"results/evaluate/{prefix}/ensemble/metrics.tsv",
    }


def scan_parts(wildcards):
    """Scattered score files of a scan (scattergather `scan`, from scan.parts); none when it runs as one job."""
    paths = scatter.scan(
        "results/scan/{{genome}}/{{task}}/{{model}}/parts/{scatteritem}.npz"
    )
    if len(paths) < 2:
        return []
    return [path.format(**wildcards) for path in paths]


def scan_prefixes():
    """results/scan/{genome}/{task}/{model} for every scan the config asks for."""
    return [
        f"results/scan/{genome}/{task}/{model}"
        for genome in config["scan"]["genomes"]
        for task in SCAN_TASKS
        for model in SCAN_MODELS
    ]


def scan_evaluations():
    return [
        f"{prefix}/evaluation.tsv"
        for prefix in scan_prefixes()
        if genome_truth(prefix.split("/")[2]) is not None
    ]


def final_outputs():
    return [
        "results/report/index.html",
        "results/tables/metrics.tsv",
        *[f"{prefix}/calls.bed.gz" for prefix in scan_prefixes()],
        *scan_evaluations(),
        *promoter_context_evaluations(),
        *promoter_context_tracks(),
        *[path for name in READS for path in reads_files(name)],
    ]


def report_runs():
    """One entry per trained classifier: where its predictions and training curve are."""
    return [
        {
            "task": task,
            "model": model,
            "seed": int(seed),
            "predictions": f"results/evaluate/{task}/{model}/seed{seed}/predictions.tsv",
            "history": f"results/train/{task}/{model}/seed{seed}/history.tsv",
        }
        for task, model, seed in runs()
    ]


def report_language_models():
    """One entry per language model of the first seed: genome pretraining, then each task's fine-tuning; an LM
    that several models share appears once, under its owner's name."""
    entries = {}
    for model, settings in config["models"].items():
        if not settings["pretrain"]:
            continue
        seed = model_seeds(model)[0]
        stride = settings["tokenizer"]["stride"]
        folder = lm_folder(model, seed)
        entries.setdefault(
            folder,
            {
                "label": f"{lm_owner(model, 'pretrain')} pretraining",
                "history": f"results/{folder}/history.tsv",
                "stride": stride,
                "objective": "masked" if settings["arch"] == "transformer" else "next",
            },
        )
        if settings["finetune"]:
            for task in TASKS:
                if model in task_models(task):
                    folder = lm_folder(model, seed, task)
                    entries.setdefault(
                        folder,
                        {
                            "label": f"{lm_owner(model, 'finetune')} fine-tuned on {task}",
                            "history": f"results/{folder}/history.tsv",
                            "stride": stride,
                            "objective": "next",
                        },
                    )
    return label_seeds_where_shared(entries)


def report_embeddings():
    """t-SNE projections for the report: each model's first seed on each task (fold 1 of a cross-validation)."""
    if not config["report"]["embedding_points"]:
        return []
    return [
        {
            "task": task,
            "model": model,
            "projection": f"results/evaluate/{task}/{model}/seed{seed}/embedding_2d.tsv",
        }
        for task, model, seed in runs()
        if seed == model_seeds(model)[0]
        and config["tasks"][task].get("cv", {}).get("fold", 1) == 1
    ]


def report_markdown_outputs():
    """The benchmark tables as Markdown: always beside the report, and at `report.docs` when set."""
    outputs = {"markdown": "results/report/benchmarks.md"}
    if config["report"]["docs"]:
        outputs["markdown_docs"] = config["report"]["docs"]
    return outputs


# How this run was started, for the report and docs/benchmarks.md: Snakemake's own command line, handed to jobs
# through the environment (not `params`, which would rerun the report whenever the command line changes). Jobs that
# parse this file again (cluster jobs) keep the value they inherited.
os.environ.setdefault("GENOLM_COMMAND", " ".join(shlex.quote(arg) for arg in sys.argv))


def _shown_path(path):
    """A config file path relative to the repository when it lies inside it, as a user would type it."""
    path = Path(path).resolve()
    base = Path(workflow.basedir).resolve()
    return str(path.relative_to(base)) if path.is_relative_to(base) else str(path)


os.environ.setdefault(
    "GENOLM_CONFIGFILES",
    " ".join(_shown_path(path) for path in workflow.overwrite_configfiles or []),
)


def report_scans():
    """One entry per genome scan: its per-window scores and, when known, the true elements."""
    scans = []
    fits = promoter_context_prefixes()
    for prefix in scan_prefixes():
        _, _, genome, task, model = prefix.split("/")
        scans.append(
            {
                "genome": genome,
                "task": task,
                "model": model,
                "kind": config["tasks"][task]["kind"],
                "scores": f"{prefix}/scores.npz",
                "summary": f"{prefix}/summary.tsv",
                "evaluation": (
                    f"{prefix}/evaluation.tsv" if genome_truth(genome) else None
                ),
                "truth": genome_truth(genome),
                "context": (
                    f"{prefix}/context/evaluation.tsv" if prefix in fits else None
                ),
            }
        )
    return scans


def dataset_summaries():
    """Summary tables of the labelled data: the demo's, then one per real task."""
    demo = ["results/data/demo/summary.tsv"] if DEMO_TASKS else []
    return demo + [f"results/data/{task}/summary.tsv" for task in SOURCE_TASKS]


def report_data_files():
    """The data every result derives from, checksummed in the report: genomes and labelled task tables."""
    files = [genome_path(genome) for genome in GENOMES]
    files += [f"results/data/{task}/{split}.tsv" for task in TASKS for split in SPLITS]
    files += [path for name in READS for path in reads_files(name)]
    return files


def report_timings():
    """Benchmark files of the expensive rules, for the report's runtime table."""
    timings = run_paths("benchmarks/train_classifier/{task}_{model}_seed{seed}.tsv")
    trained = runs()
    timings += sorted(
        {
            f"benchmarks/pretrain_lm/{lm_owner(model, 'pretrain')}_seed{seed}.tsv"
            for _, model, seed in trained
            if config["models"][model]["pretrain"]
        }
    )
    timings += sorted(
        {
            f"benchmarks/finetune_lm/{task}_{lm_owner(model, 'finetune')}_seed{seed}.tsv"
            for task, model, seed in trained
            if config["models"][model]["finetune"]
        }
    )
    timings += [
        f"benchmarks/scan_genome/{genome}_{task}_{model}.tsv"
        for genome in config["scan"]["genomes"]
        for task in SCAN_TASKS
        for model in SCAN_MODELS
    ]
    return timings
