# The image of every node in cluster.yaml: Ray's CUDA image with this project's dependencies baked in,
# so a node that joins the cluster downloads nothing from PyPI (its setup command only links the synced
# repository: pip install --no-deps -e ~/omasgan).  Build and push it once per dependency change
# (docs/cluster.md, "Build the node image"):
#
#   docker build -t omasgan:0.1.0 .
#
# The base image's Ray must equal the Ray that runs `ray up` (2.60.0) and satisfy setup.py's ray[tune].
FROM rayproject/ray:2.60.0-py311-gpu

# torch and torchvision exactly as setup.py pins them (PyPI's Linux wheels carry CUDA), in their own layer
RUN pip install --no-cache-dir torch==2.14.1 torchvision==0.29.1

# The rest of setup.py's requirements and the "cluster" extra (boto3, for conditional writes on S3):
# install the package from a copy of its sources, then remove the package and keep its dependencies.
COPY --chown=ray:users setup.py pyproject.toml README.md /tmp/omasgan-build/
COPY --chown=ray:users omasgan /tmp/omasgan-build/omasgan
COPY --chown=ray:users trainables /tmp/omasgan-build/trainables
COPY --chown=ray:users search_spaces /tmp/omasgan-build/search_spaces
COPY --chown=ray:users distributed /tmp/omasgan-build/distributed
RUN pip install --no-cache-dir "/tmp/omasgan-build[cluster]" \
    && pip uninstall -y omasgan \
    && rm -rf /tmp/omasgan-build \
    && python -c "import torch, torchvision, ray, optuna, pyarrow, boto3; print('torch', torch.__version__, 'cuda', torch.version.cuda)"

# Units given a GPU must see it: fail the build on a CPU-only torch.
RUN python -c "import torch, sys; sys.exit(0 if torch.version.cuda else 'torch has no CUDA build')"
