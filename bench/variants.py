"""The variants table: each OMASGAN variant alone against the paper's setting, on the same units.

    python bench/variants.py --dataset digits --classes 0-9 --seeds 0-2
    python bench/variants.py --dataset mnist --data-root ../shared/data --config bench/configs/mnist_quality.yaml \
        --classes 0,1,8 --seeds 10-12 --cache bench/out/studies/variants-mnist/cache

Each variant is one switch over the base config (the data set's defaults, or ``--config``) and runs as
an ``omasgan seeds`` study of its own (folder ``--storage``/``variant-<name>``; an interrupted run
resumes, a finished one is read again), plus a kNN seeds study on the same units.  All of them share
one stage cache (``--cache``, default ``--storage``/cache): its keys hash everything a stage depends
on, so a variant trains only the stages it changes.  Then every variant (and kNN) is compared with the
paper's setting by ``omasgan compare`` (paired by (class, seed): mean difference, stratified bootstrap
interval, P(A > B), Wilcoxon p, verdict) on the test split and on validation, and the shortcut alarm's
figures (mean over units of Task 2's ink / contrast AUROC of B(z) against x, and J's Spearman rho with
ink) are put next to them.  Prints the table and writes ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from omasgan.cli import main as omasgan
from omasgan.distributed.report.compare import compare
from omasgan.distributed.store.result_store import ResultStore
from omasgan.distributed.store.study_folder import STUDY_FILE

HERE = Path(__file__).parent
VARIANTS = {
    "paper": [],
    "refine": ["j.refine_steps=1"],
    "boundaries2": ["task2.boundaries=2"],
    "critic-space": ["task2.feature_space=critic"],
    "ae-space": ["task2.feature_space=autoencoder"],
    "score-critic": ["j.score=critic"],
    "score-fusion": ["j.score=fusion"],
    # the combination the MNIST variants search chose (bench/configs/variant-ae-critic.yaml)
    "ae-critic": ["task2.boundaries=2", "task2.feature_space=autoencoder", "j.refine_steps=2", "j.score=critic"],
}


def run_seeds(args: argparse.Namespace, name: str, extra: list[str]) -> None:
    """The seeds study ``name`` (resumed when its folder holds one)."""
    folder = Path(args.storage) / name
    common = ["--storage", args.storage, "--name", name, "--cache", args.cache]
    if (folder / STUDY_FILE).is_file():
        code = omasgan(["seeds", "--resume", *common])
    else:
        config = ["--config", args.config] if args.config else []
        root = ["--data-root", args.data_root] if args.data_root else []
        code = omasgan(["seeds", "--dataset", args.dataset, *config, *root, "--classes", args.classes,
                        "--seeds", args.seeds, "--threads", str(args.threads), *common, *extra])
    if code != 0:
        raise SystemExit(f"the seeds study {name} failed (exit {code})")


def alarm_figures(storage: str, name: str) -> dict[str, float]:
    rows = ResultStore(str(Path(storage) / name)).read().to_pandas()
    rows = rows[rows.status == "ok"]
    task2 = rows[rows.stage == "task2"]
    j_val = rows[(rows.stage == "j") & (rows.split == "val")]
    figures = {}
    for column in ("alarm_ink_auroc", "alarm_contrast_auroc", "alarm_nn_auroc"):
        if column in task2:
            figures[column.removeprefix("alarm_")] = float(task2[column].mean())
    if "alarm_ink_spearman" in j_val:
        figures["j_ink_spearman"] = float(j_val["alarm_ink_spearman"].mean())
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--config", help="a base config file (default: the data set's defaults)")
    parser.add_argument("--data-root")
    parser.add_argument("--classes", default="0-9")
    parser.add_argument("--seeds", default="0-2")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma list of: {', '.join(VARIANTS)}")
    parser.add_argument("--storage", help="folder of the studies (default bench/out/variants-<dataset>)")
    parser.add_argument("--cache", help="the shared stage cache (default <storage>/cache)")
    parser.add_argument("--out", help="JSON file (default bench/results/variants-<dataset>.json)")
    args = parser.parse_args()
    args.storage = args.storage or str(HERE / "out" / f"variants-{args.dataset}")
    args.cache = args.cache or f"{args.storage}/cache"
    out = Path(args.out or HERE / "results" / f"variants-{args.dataset}.json")
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        print(f"unknown --variants {unknown}; choose among {', '.join(VARIANTS)}", file=sys.stderr)
        return 2
    names = ["paper"] + [v for v in names if v != "paper"]

    for name in names:
        run_seeds(args, f"variant-{name}", [a for item in VARIANTS[name] for a in ("--set", item)])
    run_seeds(args, "baseline-knn", ["--method", "knn"])

    records = []
    for name in [*names, "knn"]:
        study = "baseline-knn" if name == "knn" else f"variant-{name}"
        record = {"variant": name, "switch": " ".join(VARIANTS.get(name, ["baseline"])) or "(paper)"}
        for split in ("test", "val"):
            result = compare(args.storage, study, "variant-paper", split=split)
            overall = result["overall"]
            record.update({f"{split}_mean": overall["mean_a"], f"{split}_diff": overall["mean_diff"],
                           f"{split}_ci": [overall["ci_low"], overall["ci_high"]],
                           f"{split}_p_a_better": overall["p_a_better"], f"{split}_wilcoxon_p": overall["wilcoxon_p"],
                           f"{split}_verdict": overall["verdict"], "units": overall["n"]})
            if split == "test":
                record["per_class_test"] = {str(r["holdout_class"]): r["mean_a"] for r in result["per_class"]}
        if name != "knn":
            record.update(alarm_figures(args.storage, study))
        records.append(record)

    frame = pd.DataFrame(records)
    shown = ["variant", "units", "test_mean", "test_diff", "test_verdict", "val_mean", "val_diff", "val_verdict",
             "ink_auroc", "contrast_auroc", "j_ink_spearman"]
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.precision", 3):
        print(frame[[c for c in shown if c in frame]].to_string(index=False))
    document = {"benchmark": "bench/variants.py", "dataset": args.dataset, "config": args.config,
                "classes": args.classes, "seeds": args.seeds, "threads": args.threads,
                "command": " ".join(sys.argv), "variants": {n: VARIANTS.get(n, []) for n in names},
                "rows": records}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2, default=float) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
