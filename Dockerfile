# xtune worker / dashboard image. torch from PyPI on Linux is the CUDA build.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 XTUNE_CACHE_DIR=/cache
WORKDIR /app
COPY pyproject.toml README.md ./
COPY xtune ./xtune
COPY studies ./studies
RUN pip install ".[search,sample]"
CMD ["xtune", "--help"]
