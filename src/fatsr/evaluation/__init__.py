"""Evaluation: scores of SR images against HR (:mod:`~fatsr.evaluation.metrics`,
:mod:`~fatsr.evaluation.lpips`), ``fatsr evaluate``'s pairing, scoring and report
(:mod:`~fatsr.evaluation.evaluate`, :mod:`~fatsr.evaluation.report`), ``fatsr compare``'s pages
(:mod:`~fatsr.evaluation.compare`) and Local Attribution Maps (:mod:`~fatsr.evaluation.lam`).
Each command's function returns the full report its command writes; ``fatsr.cli`` only parses,
calls and prints.
"""
