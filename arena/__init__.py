"""Arena: neuroevolution (GA) against gradient descent (backprop) on the same network, task and budget."""

__version__ = "0.1.0"
