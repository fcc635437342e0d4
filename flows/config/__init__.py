"""Configuration: params.yaml and its profiles, validated; the run grid; where every stage reads and writes.

- `schema`: one strict pydantic model per params section (`Params` for the whole file); `ParamsError`.
- `fields`: the value types of the keys, each with what a valid value is (the words of error messages).
- `validation`: pydantic's errors turned into one message naming the dotted key; `defaults`: `DEFAULTS`.
- `json_schema`: params.schema.json and profiles/profile.schema.json, for editors' YAML language servers.
- `files`: strict YAML reading, profiles, deep merging, atomic writes.
- `grid`: a method's resolved params (`run_params`), ablation variants, learning-rate candidates, and the run
  grid DVC expands.
- `params`: `load_params` (params.yaml + profile, validated, with the checks that span keys) and the resolved
  file DVC reads.
- `paths`: the pipeline's folder layout under the project root.

``python -m flows.config {resolve,show,schema}`` is the command line.
"""
