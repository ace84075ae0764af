"""The queue side (Celery): the app (app.py), sending runs (send.py), the worker task (worker.py), the reconciler (reconcile.py)."""
