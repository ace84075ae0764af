"""The statistics of a verdict, as a library with no I/O: runs in, estimates, intervals, comparisons and words out.

`statistics` holds the estimates (success rate, ERT, Kaplan-Meier, IQM), the comparisons (probability of
improvement, log-rank, Holm) and the ranking; `report` turns them into the leaderboard, comparison and
summary bodies the API serves.
"""
