"""Reading and writing files: image decoding and encoding, atomic writes, image folders.
"""
