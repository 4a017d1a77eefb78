"""MNIST VAE (Kingma & Welling); its decoder is the INC generator for MNIST."""
import tf_inc  # noqa: F401  (sets TF log level before TensorFlow loads)
from vae.model import VAE, VAEConfig, build_decoder, build_encoder  # noqa: F401
