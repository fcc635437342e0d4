"""Configuration: params.yaml and its profiles, validated; the run grid; where every stage reads and writes.

- `schema`: every section and key, its default and what it must be; `ParamsError`.
- `files`: strict YAML reading, profiles, deep merging, atomic writes.
- `grid`: a method's resolved params (`run_params`), ablation variants, and the run grid DVC expands.
- `params`: `load_params` (params.yaml + profile, validated) and the resolved file DVC reads.
- `paths`: the pipeline's folder layout under the project root.

``python -m flows.config {resolve,show}`` is the command line.
"""
