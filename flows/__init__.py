"""The reproduction pipeline: stages as plain functions, run by DVC or by a Prefect flow."""
