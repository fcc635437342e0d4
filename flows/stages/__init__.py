"""The pipeline's six stages, each a plain function with a command line (``python -m flows.stages.<stage>``).

prepare -> fewshot -> train -> merge -> evaluate -> report. DVC runs the command lines (dvc.yaml); the Prefect
flow and the plain runner (`flows.orchestration`) call the functions. `common` holds the shared command-line
plumbing: params loading and one ``error:`` line with exit code 2 for bad input.
"""
