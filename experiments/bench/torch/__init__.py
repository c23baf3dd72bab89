"""The PyTorch side of the side-by-side benchmarks: run in the reference interpreter
(stable-worldmodel + torch), never import jax or lewm_jax."""
