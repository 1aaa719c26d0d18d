"""The model contract: the item schema and its text, the prompt, the token cutter, the decoding of
a price from the model's logprobs, the serving spec and the compute dtype for this hardware. Every
stage (training, serving, evaluation, the batch job) builds its prompts and engine arguments here."""
