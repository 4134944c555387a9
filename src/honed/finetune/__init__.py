"""Fine-tuning: exporting training data, jobs that train (local LoRA, OpenAI), and comparing the result.

`create_job(h, FinetuneSpec(backend="local", base_model="local/smollm2-135m-instruct", training=""),
training_examples, validation_examples)` starts a job; `job.result(timeout=3600)` waits for its model,
e.g. "local/smollm2-135m-instruct+ft-<job id>".
"""

from honed.finetune.backend import FinetuneSpec, TrainResult
from honed.finetune.jobs import FinetuneJob, create_job, get_job, list_jobs

__all__ = ["FinetuneJob", "FinetuneSpec", "TrainResult", "create_job", "get_job", "list_jobs"]
