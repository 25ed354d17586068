"""Using a loaded model: stylisation, tiling, batch runs, benchmarks, quality evaluation and
export. Speaks to models only through the StyleModel protocol.
"""
