"""Helpers of workflow/rules/lm.smk: language-model quality and zero-shot variant scores (the `lm:` block)."""

LM = config["lm"]
# An LM is named by its results/ subfolder: pretrain/{model}/seed{seed} or finetune/{task}/{model}/seed{seed}.
LM_PATTERN = r"(pretrain|finetune/[^/]+)/[^/]+/seed\d+"
DEMO_GENOMES = [
    name for name, genome in config["genomes"].items() if genome["source"] == "demo"
]


def _check_lm_names():
    """References of the lm block to other config sections, which the schema cannot check."""
    pretrained = [name for name, model in config["models"].items() if model["pretrain"]]
    for model in LM["models"]:
        if model not in pretrained:
            raise ValueError(
                f"config: lm.models names '{model}', which is not a pretrained model ({', '.join(pretrained)})"
            )
    for genome in LM["quality"]["genomes"]:
        if genome not in GENOMES:
            raise ValueError(
                f"config: lm.quality.genomes names unknown genome '{genome}'"
            )
    for name, vcf in LM["variants"]["vcfs"].items():
        if vcf["genome"] not in GENOMES:
            raise ValueError(
                f"config: lm.variants.vcfs.{name}.genome names unknown genome '{vcf['genome']}'"
            )
    demo_vcf = LM["variants"]["demo"]["box"] or LM["variants"]["demo"]["background"]
    if (
        demo_vcf or LM["quality"]["heldout_demo_seed"] is not None
    ) and not DEMO_GENOMES:
        raise ValueError(
            "config: lm.variants.demo and lm.quality.heldout_demo_seed need a genome with source: demo"
        )
    if "demo" in LM["variants"]["vcfs"]:
        raise ValueError(
            "config: lm.variants.vcfs: the name 'demo' is reserved for the demo variants"
        )
    classifier = LM["variants"]["classifier"]
    if classifier and (
        classifier["task"] not in TASKS or classifier["model"] not in MODELS
    ):
        raise ValueError(
            f"config: lm.variants.classifier names unknown task or model {classifier}"
        )


_check_lm_names()


def lm_names():
    """The LMs the block evaluates (first seed): each model's pretraining, then its task fine-tunings."""
    models = LM["models"] or [
        name for name, model in config["models"].items() if model["pretrain"]
    ]
    names = []
    for model in models:
        seed = model_seeds(model)[0]
        names.append(lm_folder(model, seed))
        if LM["finetuned"] and config["models"][model]["finetune"]:
            names += [
                lm_folder(model, seed, task)
                for task in TASKS
                if model in task_models(task)
            ]
    return list(dict.fromkeys(names))  # a shared LM once


def lm_model(lm):
    """The model name inside an LM name."""
    return lm.split("/")[-2]


def lm_vcfs():
    """VCF name -> (path, genome): the demo's labelled variants when asked for, then the user's files."""
    vcfs = {}
    demo = LM["variants"]["demo"]
    if demo["box"] or demo["background"]:
        vcfs["demo"] = ("results/lm/variants/demo.vcf.gz", DEMO_GENOMES[0])
    vcfs.update(
        {name: (v["path"], v["genome"]) for name, v in LM["variants"]["vcfs"].items()}
    )
    return vcfs


def lm_variant_inputs(wildcards):
    path, genome = lm_vcfs()[wildcards.vcf]
    inputs = {
        "checkpoint": f"results/{wildcards.lm}/lm.safetensors",
        "fasta": genome_path(genome),
        "vcf": path,
    }
    classifier = LM["variants"]["classifier"]
    if classifier:
        seed = model_seeds(classifier["model"])[0]
        inputs["classifier"] = (
            f"results/train/{classifier['task']}/{classifier['model']}/seed{seed}/model.safetensors"
        )
    return inputs


def lm_quality_inputs(wildcards):
    return {
        "checkpoint": f"results/{wildcards.lm}/lm.safetensors",
        "fastas": [genome_path(genome) for genome in LM["quality"]["genomes"]],
    }


def lm_heldout_demo():
    """The held-out demo genome's settings (the demo block with another seed), or None."""
    seed = LM["quality"]["heldout_demo_seed"]
    return None if seed is None else {"demo": dict(config["demo"]), "seed": seed}


def lm_quality_enabled():
    return (
        bool(LM["quality"]["genomes"]) or LM["quality"]["heldout_demo_seed"] is not None
    )


def lm_outputs():
    """Targets of rule all from lm.smk."""
    targets = []
    if lm_quality_enabled():
        targets += [f"results/lm/quality/{lm}.tsv" for lm in lm_names()]
    for vcf in lm_vcfs():
        targets += [f"results/lm/variants/{vcf}/{lm}.tsv" for lm in lm_names()]
        targets += [f"results/lm/variants/{vcf}/{lm}.vcf.gz" for lm in lm_names()]
    return targets


def report_lm():
    """Report entries: one per LM-quality table and one per scored VCF and LM."""
    entries = []
    if lm_quality_enabled():
        entries += [
            {"kind": "quality", "lm": lm, "table": f"results/lm/quality/{lm}.tsv"}
            for lm in lm_names()
        ]
    entries += [
        {
            "kind": "variants",
            "lm": lm,
            "vcf": vcf,
            "table": f"results/lm/variants/{vcf}/{lm}.tsv",
        }
        for vcf in lm_vcfs()
        for lm in lm_names()
    ]
    return entries


def report_lm_files():
    """The inputs of report_lm()'s entries."""
    return [entry["table"] for entry in report_lm()]
