"""AdaMix: Mixture-of-Adaptations for parameter-efficient tuning of any Hugging Face transformer."""
