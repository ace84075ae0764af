"""Trainers (plain functions), the run executor, and (in celery_app / jobs) the queue side."""
