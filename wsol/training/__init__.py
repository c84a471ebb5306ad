"""Training: the loop, checkpoints and resume, the selection split, the WSOL training methods."""
