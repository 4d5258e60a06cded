"""The running gateway service: the worker that commits batches, its assembly from config, and its health."""
