"""qeqprop."""
