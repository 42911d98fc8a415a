"""One distribution, ``omasgan``, with the console script ``omasgan``.

The three card folders ``trainables/``, ``search_spaces/`` and ``distributed/`` live at the top level
but install under the ``omasgan`` namespace (``omasgan.trainables``, ``omasgan.search_spaces``,
``omasgan.distributed``) through ``package_dir``, which works for regular and editable installs;
``distributed`` alone would clash with Dask's package of that name.  A card folder is mapped once
it holds an ``__init__.py``.
"""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
CARD_FOLDERS = {
    "omasgan.trainables": "trainables",
    "omasgan.search_spaces": "search_spaces",
    "omasgan.distributed": "distributed",
}

package_dir = {"omasgan": "omasgan"}
packages = ["omasgan"] + [f"omasgan.{name}" for name in find_packages("omasgan")]
for namespace, folder in CARD_FOLDERS.items():
    if (HERE / folder / "__init__.py").is_file():
        package_dir[namespace] = folder
        packages += [namespace] + [f"{namespace}.{name}" for name in find_packages(folder)]

setup(
    name="omasgan",
    version="0.1.0",
    description="OMASGAN anomaly detection: a faithful PyTorch implementation with Ray Tune / Optuna studies",
    long_description=(HERE / "README.md").read_text() if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=packages,
    package_dir=package_dir,
    install_requires=[
        "torch==2.14.1",
        "torchvision==0.29.1",
        "ray[tune]>=2.50",
        "optuna>=4.5",
        "scikit-learn>=1.3",
        "pyarrow>=14",
        "pandas>=2.0",
        "numpy>=1.24",
        "scipy>=1.10",
        "pyyaml>=6.0",
        "matplotlib>=3.7",
        "tqdm>=4.64",
    ],
    # duckdb and polars only check that the Parquet results read with no project code; moto's server
    # mode is the S3-compatible server the object-store tests start on the loopback; pytest-timeout gives
    # every test a time limit, so a hang fails with its stacks instead of stalling CI.  "cluster":
    # what s3:// storage needs on every node (boto3 for conditional writes; the worker image has it)
    extras_require={
        "test": ["pytest>=8.0", "pytest-timeout>=2.2", "duckdb>=1.0", "polars>=1.0", "moto[server]>=5.0", "boto3>=1.35"],
        "cluster": ["boto3>=1.35"],
    },
    entry_points={
        "console_scripts": ["omasgan = omasgan.cli:main"],
        # the Ray / Optuna study commands live in omasgan.distributed, so omasgan.cli never imports Ray
        "omasgan.commands": ["studies = omasgan.distributed.cli:register"],
    },
)
