"""Turning SmolLM2-135M-Instruct into a masked diffusion LM: prompts, distillation, adaptation, evaluation."""
