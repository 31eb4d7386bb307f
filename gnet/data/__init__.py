"""Images and data sets, before any model: decoding images, preprocessing, Fashion-MNIST, image folders and the bundled samples.

Nothing here needs a loaded model (that is :mod:`gnet.inspect.evaluation`).
"""
