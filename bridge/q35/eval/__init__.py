"""`q35.eval`: quality of a (quantized) language model under a named, stated protocol — token perplexity and bits
per byte (`q35.eval.perplexity`)."""
