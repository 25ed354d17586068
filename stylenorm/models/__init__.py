"""The networks, one definition each (fast inference path inside): the VGG encoder, the AdaIN
decoder and pipeline, the lite model and the CIN network, and the StyleModel protocol they
answer to.
"""
