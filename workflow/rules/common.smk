"""Config validation, names and path helpers shared by every rule file. Logic lives in the genolm package."""

from snakemake.utils import validate

validate(config, schema="../schemas/config.schema.yaml")

SPLITS = ["train", "valid", "test"]
TASKS = list(config["tasks"])
MODELS = list(config["models"])
SEEDS = [str(seed) for seed in config["seeds"]]
GENOMES = list(config["genomes"])
DEMO_TASKS = [
    name for name, task in config["tasks"].items() if task["source"] == "demo"
]
SCAN_MODELS = config["scan"]["models"] or MODELS
ENV_DATA = "../../envs/data.yaml"
ENV_TORCH = "../../envs/torch.yaml"
ENV_REPORT = "../../envs/report.yaml"


def _check_names():
    """Names that the schema cannot cross-check: references between config sections."""
    for model, settings in config["models"].items():
        for genome in (settings["pretrain"] or {}).get("genomes", []):
            if genome not in config["genomes"]:
                raise ValueError(
                    f"config: models.{model}.pretrain.genomes names unknown genome '{genome}'"
                )
        if settings["pretrain"] and settings["arch"] != "awd_lstm":
            raise ValueError(
                f"config: models.{model}.pretrain is only supported for arch awd_lstm"
            )
        for task in settings["task_params"]:
            if task not in config["tasks"]:
                raise ValueError(
                    f"config: models.{model}.task_params names unknown task '{task}'"
                )
    for key, known in (("genomes", GENOMES), ("models", MODELS)):
        for name in config["scan"][key]:
            if name not in known:
                raise ValueError(
                    f"config: scan.{key} names unknown entry '{name}' (known: {', '.join(known)})"
                )


_check_names()


wildcard_constraints:
    task="|".join(TASKS),
    model="|".join(MODELS),
    genome="|".join(GENOMES),
    seed=r"\d+",
    k=r"[1-8]",
    stride=r"[1-9]\d*",


def model_for_task(model, task):
    """A model's settings with its per-task parameter overrides applied."""
    settings = dict(config["models"][model])
    settings["params"] = {**settings["params"], **settings["task_params"].get(task, {})}
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


def pretrained_lm(wildcards):
    """The language model a classifier starts from, or nothing for models trained from scratch."""
    if config["models"][wildcards.model]["pretrain"] is None:
        return []
    return f"results/pretrain/{wildcards.model}/seed{wildcards.seed}/lm.safetensors"


def lm_corpus(wildcards):
    """Tokenized genomes of a model's pretraining corpus."""
    pretrain = config["models"][wildcards.model]["pretrain"]
    tok = tokenization(wildcards.model)
    return [
        f"results/tokens/corpus/{genome}/{tok}.npz" for genome in pretrain["genomes"]
    ]


def genome_path(genome):
    """The FASTA of a named genome: the generated demo, or the user's file."""
    settings = config["genomes"][genome]
    return (
        "results/data/demo/genome.fa"
        if settings["source"] == "demo"
        else settings["fasta"]
    )


def genome_fasta(wildcards):
    return genome_path(wildcards.genome)


def genome_truth(genome):
    """Known elements (GFF3) of a genome, or None when it has no annotation."""
    settings = config["genomes"][genome]
    return (
        "results/data/demo/truth.gff3"
        if settings["source"] == "demo"
        else settings.get("gff")
    )


def scan_model_files(wildcards):
    """The first seed's checkpoint and metrics (its validation threshold) of the model that scans."""
    seed = SEEDS[0]
    return {
        "checkpoint": f"results/train/{wildcards.task}/{wildcards.model}/seed{seed}/model.safetensors",
        "metrics": f"results/evaluate/{wildcards.task}/{wildcards.model}/seed{seed}/metrics.tsv",
    }


def scan_prefixes():
    """results/scan/{genome}/{task}/{model} for every scan the config asks for."""
    return [
        f"results/scan/{genome}/{task}/{model}"
        for genome in config["scan"]["genomes"]
        for task in TASKS
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
        for task in TASKS
        for model in MODELS
        for seed in SEEDS
    ]


def report_scans():
    """One entry per genome scan: its per-window scores and, when known, the true elements."""
    scans = []
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
            }
        )
    return scans


def report_data_files():
    """The data every result derives from, checksummed in the report: genomes and labelled task tables."""
    files = [genome_path(genome) for genome in GENOMES]
    files += [
        f"results/data/{task}/{split}.tsv" for task in DEMO_TASKS for split in SPLITS
    ]
    return files


def report_timings():
    """Benchmark files of the expensive rules, for the report's runtime table."""
    timings = [
        f"benchmarks/train_classifier/{task}_{model}_seed{seed}.tsv"
        for task in TASKS
        for model in MODELS
        for seed in SEEDS
    ]
    timings += [
        f"benchmarks/pretrain_lm/{model}_seed{seed}.tsv"
        for model in MODELS
        if config["models"][model]["pretrain"]
        for seed in SEEDS
    ]
    timings += [
        f"benchmarks/scan_genome/{genome}_{task}_{model}.tsv"
        for genome in config["scan"]["genomes"]
        for task in TASKS
        for model in SCAN_MODELS
    ]
    return timings
