"""Weights: self-describing safetensors files, the weights store, model loading by kind, importers
of published checkpoints and their download.
"""
