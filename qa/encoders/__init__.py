"""The sentence encoders, one module each, loaded by name through qa.embed's
`load_encoder` (its `ENCODERS` table): a module gives its encoder class and a
`load(name, threads, tower)` that builds it."""
