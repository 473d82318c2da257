"""Datasets: one module per modality, embedded generators and real loaders.

Imports neither ``resnorm.models`` nor ``resnorm.training``.
"""
