"""Fine-tuning: exporting training data, jobs that train (local LoRA, OpenAI), and comparing the result."""
