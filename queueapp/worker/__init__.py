from queueapp.worker.lifecycle import Worker, reap

__all__ = ["Worker", "reap"]
